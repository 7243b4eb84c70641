"""Source files → posts: front matter, fields, dates, slugs, ids (pure: bytes in, values out).

CONTRACT (helper fills in):

    parse_source(path: str, data: bytes, settings: Settings) -> ParsedSource
        path is the POSIX path below the content folder; raises ContentError
    to_meta(parsed: ParsedSource, settings: Settings, *, first_seen: datetime | None,
            asset_size: Callable[[str], int | None] = ...) -> PostMeta
    slugify(text: str) -> str
    strip_xml_illegal(text: str) -> str
"""
