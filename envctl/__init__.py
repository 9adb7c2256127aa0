"""envctl: validate, render, promote and roll back the environment files."""
