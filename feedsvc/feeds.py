"""Posts → RSS 2.0 / Atom 1.0 / JSON Feed 1.1 bytes (pure). CONTRACT in the helper brief."""
