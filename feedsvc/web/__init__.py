"""The web surface: :func:`create_app` builds the Starlette app."""

from feedsvc.web.app import create_app

__all__ = ["create_app"]
