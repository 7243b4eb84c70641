"""Subscribers, digest selection and views, message rendering and personalising, tokens,
confirmations, digest jobs."""
