"""The API documentation pages, served offline: Swagger UI at ``/docs`` and ReDoc at ``/redoc``
with their assets vendored in ``serving/apidocs`` (see its README: versions and licences) and
mounted at ``/docs/assets``. No inline script, so the pages run under a CSP of ``'self'``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import HTMLResponse

ASSETS = Path(__file__).resolve().parent.parent / "apidocs"
router = APIRouter(include_in_schema=False)

SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Cảnh Giác investigator API — Swagger UI</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init-swagger.js"></script>
</body></html>"""

REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Cảnh Giác investigator API — ReDoc</title>
</head><body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs/assets/redoc.standalone.js"></script>
</body></html>"""


@router.get("/docs")
def swagger() -> HTMLResponse:
    return HTMLResponse(SWAGGER)


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return HTMLResponse(REDOC)
