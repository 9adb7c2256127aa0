"""harness: build the images and run both services as containers (tests, make up, bench)."""
