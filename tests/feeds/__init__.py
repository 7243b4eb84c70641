"""Tests of feedsvc.feeds: which feeds exist, RSS/Atom/JSON bytes, output, WebSub."""
