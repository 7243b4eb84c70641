"""Tests of feedsvc.web: the app through httpx's ASGI transport and a real uvicorn."""
