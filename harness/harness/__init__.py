"""harness: build the images and run both services as containers (tests, make up, bench)."""

import os

# testcontainers reads this at import. Its reaper (Ryuk) is an image pulled from a
# registry these machines cannot reach; our own teardown plus the stack label
# (`make down`) do its job instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
