"""Posts → which feeds exist → RSS / Atom / JSON Feed bytes → files on disk; WebSub pings."""
