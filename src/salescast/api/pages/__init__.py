"""The dashboard: server-rendered pages at `/` and `/ui/...`, with their own static files."""

from salescast.api.pages.routes import router

__all__ = ["router"]
