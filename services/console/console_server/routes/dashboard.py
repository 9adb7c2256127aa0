"""The dashboard page. Its script and style are served from ``/static``."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])

# Read once: the page is part of the installed package and never changes
# while the process runs.
_INDEX = (files("console_server") / "static" / "index.html").read_text(encoding="utf-8")


@router.get("/", summary="The dashboard (HTML)", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_INDEX, headers={"Cache-Control": "no-cache"})
