"""One module per resource; combined in ``api_router``."""

from fastapi import APIRouter

from . import dag, dashboard, health, runs, status, steps

api_router = APIRouter()
for module in (health, status, steps, dag, runs, dashboard):
    api_router.include_router(module.router)
