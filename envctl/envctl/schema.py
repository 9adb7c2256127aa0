"""environments/schema.json: load it once, validate a document, explain each error in words.

jsonschema's own messages quote whole sub-documents; here every error names the one field
at fault and says what is allowed, using the schema's ``x-message`` annotation where the
rule needs explaining (a pattern, a cross-field condition).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from envctl.errors import EnvctlError, FieldPath, Problem, quote
from envctl.yamlio import line_of

SCHEMA_PATH = Path("environments") / "schema.json"


@cache
def _validator(schema_file: Path, mtime_ns: int) -> Draft202012Validator:
    del mtime_ns  # part of the cache key only: an edited schema is reloaded
    try:
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
    except (OSError, ValueError) as exc:
        raise EnvctlError(f"{SCHEMA_PATH}: cannot load the schema: {exc}") from None
    except Exception as exc:  # jsonschema.SchemaError: the schema itself is broken
        raise EnvctlError(f"{SCHEMA_PATH}: not a valid JSON Schema: {exc}") from None
    return Draft202012Validator(schema)


def validator(repo_root: Path) -> Draft202012Validator:
    schema_file = repo_root / SCHEMA_PATH
    try:
        mtime = schema_file.stat().st_mtime_ns
    except OSError:
        raise EnvctlError(f"{SCHEMA_PATH}: missing (looked in {repo_root})") from None
    return _validator(schema_file, mtime)


def schema_problems(repo_root: Path, data: Any, doc: Any, file: str) -> list[Problem]:
    """Every schema violation of ``data``, one Problem per field, in document order."""
    problems: dict[tuple[FieldPath, str], Problem] = {}
    for error in validator(repo_root).iter_errors(data):
        error = _most_specific(error)
        path, message = _explain(error)
        line = line_of(doc, path)
        problems.setdefault((path, message), Problem(file, path, message, line))
    return sorted(problems.values(), key=lambda p: (p.line or 0, p.field))


def _most_specific(error: ValidationError) -> ValidationError:
    # oneOf/anyOf failures carry the branch errors in .context. The branch the author meant
    # is the one with the fewest errors (a weekly freeze window with a bad time fails the
    # weekly branch once, the one-off branch three times); its error names the real field.
    while error.context:
        by_branch: dict[object, list[ValidationError]] = {}
        for sub in error.context:
            branch = sub.relative_schema_path[0] if sub.relative_schema_path else None
            by_branch.setdefault(branch, []).append(sub)
        closest = min(by_branch.values(), key=len)
        best = best_match(closest)
        if best is None:
            break
        error = best
    return error


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _explain(error: ValidationError) -> tuple[FieldPath, str]:
    path: FieldPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("x-message")
    value = error.instance
    kind = error.validator
    expected: Any = error.validator_value
    if "propertyNames" in error.absolute_schema_path and isinstance(value, str):
        # A bad key: name the key itself, not the mapping that holds it.
        path = (*path, value)
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "?"
        return (*path, missing), "is required"
    if kind == "additionalProperties" and isinstance(value, dict):
        known = set(schema.get("properties", {}))
        extra = sorted(k for k in value if k not in known)
        if extra:
            allowed = ", ".join(sorted(known)) or "none"
            return (*path, extra[0]), f"unknown field (allowed here: {allowed})"
    if kind == "not" and isinstance(expected, dict):
        # {"not": {"required": ["path"]}}: point at the field that must go.
        forbidden = expected.get("required") or []
        if len(forbidden) == 1:
            path = (*path, forbidden[0])
    if custom:
        return path, custom if isinstance(value, dict | list) else f"{custom} (got {_show(value)})"
    if kind == "type":
        return path, f"must be {_expected_type(expected)}, not {_type_name(value)}"
    if kind == "enum":
        options = ", ".join(repr(v) for v in expected)
        return path, f"must be one of {options} (got {_show(value)})"
    if kind == "const":
        return path, f"must be {_show(expected)} (got {_show(value)})"
    if kind == "pattern":
        return path, f"{_show(value)} does not match {expected}"
    if kind in {"minimum", "maximum"}:
        bound = "at least" if kind == "minimum" else "at most"
        return path, f"must be {bound} {expected} (got {_show(value)})"
    if kind == "minLength":
        return path, "must not be empty"
    if kind in {"minItems", "minProperties"}:
        return (
            path,
            f"needs at least {expected} " + ("entry" if expected == 1 else "entries"),
        )
    if kind == "uniqueItems":
        return path, "lists an entry twice"
    if kind == "propertyNames":
        return path, f"has an invalid name: {error.message}"
    return path, error.message


def _show(value: Any) -> str:
    """A value as the author wrote it in YAML: true, null, 3, 'text'."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return quote(value)


def _expected_type(expected: Any) -> str:
    names = expected if isinstance(expected, list) else [expected]
    words = {
        "string": "a string",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
        "array": "a list",
        "object": "a mapping",
        "null": "null",
    }
    return " or ".join(words.get(str(n), str(n)) for n in names)
