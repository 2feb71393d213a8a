"""`/docs` (Swagger UI) and `/redoc`, with every asset served by salescast, none from a CDN.

FastAPI's own pages load Swagger UI and Redoc from jsDelivr, a favicon from
fastapi.tiangolo.com and Redoc's fonts from Google: blank pages without
internet. The same pages are built here with FastAPI's helpers over the files
vendored in `salescast/api/static/` (versions and licences in its README),
mounted at `/static`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_URL = "/static"
FAVICON_URL = f"{STATIC_URL}/swagger-ui/favicon-32x32.png"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


def install_docs(app: FastAPI) -> None:
    """Mount the vendored assets and add the two documentation pages to `app`."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)


def _openapi_url(request: Request) -> str:
    return f"{request.scope.get('root_path', '')}{request.app.openapi_url}"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: try the API from the browser."""
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{STATIC_URL}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_URL}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=FAVICON_URL,
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        # Swagger UI's default sends the document to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT_URL)
def swagger_ui_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 redirect page, as FastAPI's own docs have it."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """Redoc: the API reference as one page."""
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{STATIC_URL}/redoc/redoc.standalone.js",
        redoc_favicon_url=FAVICON_URL,
        with_google_fonts=False,
    )
