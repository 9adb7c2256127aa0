"""harness: build the images and run both services as containers for tests, make up and the bench."""
