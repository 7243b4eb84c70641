"""feedsvc: a folder of blog posts in, RSS/Atom/JSON feeds and email newsletters out."""

__version__ = "0.1.0"
