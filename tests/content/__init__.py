"""Tests of feedsvc.content: sources, front matter, posts, URLs, markup."""
