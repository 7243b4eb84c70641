"""Source files → post metadata and feed-ready HTML: the pure content pipeline."""
