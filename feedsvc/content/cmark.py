"""cmark-gfm through ctypes: Markdown → HTML (pure: a string in, a string out).

CommonMark with GitHub's tables, strikethrough, autolinks and task lists; raw HTML kept
(posts are trusted input). Strikethrough needs a double tilde (``~~gone~~``), as on
GitHub today: a single ``~`` is text, so ``1~9 … 4~6`` stays as written.
"""

from __future__ import annotations

import ctypes
from typing import Any

import cmarkgfm
from cmarkgfm import cmark

_EXTENSIONS = (b"table", b"strikethrough", b"autolink", b"tasklist")
# CMARK_OPT_STRIKETHROUGH_DOUBLE_TILDE is 1 << 14 in cmark-gfm's cmark-gfm.h.
OPTIONS = (
    cmark.Options.CMARK_OPT_UNSAFE  # raw HTML is kept: posts are trusted input
    | cmark.Options.CMARK_OPT_STRIKETHROUGH_DOUBLE_TILDE
)


class _CmarkMem(ctypes.Structure):
    _fields_ = (
        ("calloc", ctypes.c_void_p),
        ("realloc", ctypes.c_void_p),
        ("free", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
    )


def _load_cmark() -> ctypes.CDLL:
    """cmark-gfm's C API from cmarkgfm's own library, with the two frees cmarkgfm omits.

    cmarkgfm's wrappers never free the document tree or the rendered buffer: tens of KB
    leak per post (gigabytes over a daemon's life). Same library, so same extensions.
    """
    lib = ctypes.CDLL(cmarkgfm.cmark._cmark.__file__)
    void_p = ctypes.c_void_p
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "cmark_gfm_core_extensions_ensure_registered": (None, []),
        "cmark_find_syntax_extension": (void_p, [ctypes.c_char_p]),
        "cmark_parser_new": (void_p, [ctypes.c_int]),
        "cmark_parser_attach_syntax_extension": (ctypes.c_int, [void_p, void_p]),
        "cmark_parser_feed": (None, [void_p, ctypes.c_char_p, ctypes.c_size_t]),
        "cmark_parser_finish": (void_p, [void_p]),
        "cmark_parser_get_syntax_extensions": (void_p, [void_p]),
        "cmark_render_html": (void_p, [void_p, ctypes.c_int, void_p]),
        "cmark_node_free": (None, [void_p]),
        "cmark_parser_free": (None, [void_p]),
        "cmark_get_default_mem_allocator": (ctypes.POINTER(_CmarkMem), []),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    lib.cmark_gfm_core_extensions_ensure_registered()
    return lib


_CMARK = _load_cmark()
_CMARK_FREE = _CMARK.cmark_get_default_mem_allocator().contents.free
_CMARK_EXTENSIONS = tuple(_CMARK.cmark_find_syntax_extension(name) for name in _EXTENSIONS)


def to_html(text: str, options: int = OPTIONS) -> str:
    """``text`` rendered by cmark-gfm with the GFM extensions above."""
    source = text.encode("utf-8", "replace")  # lone surrogates cannot be encoded
    parser = _CMARK.cmark_parser_new(options)
    try:
        for extension in _CMARK_EXTENSIONS:
            _CMARK.cmark_parser_attach_syntax_extension(parser, extension)
        _CMARK.cmark_parser_feed(parser, source, len(source))
        root = _CMARK.cmark_parser_finish(parser)
        try:
            extensions = _CMARK.cmark_parser_get_syntax_extensions(parser)
            buffer = _CMARK.cmark_render_html(root, options, extensions)
            try:
                return ctypes.string_at(buffer).decode("utf-8")
            finally:
                _CMARK_FREE(buffer)
        finally:
            _CMARK.cmark_node_free(root)
    finally:
        _CMARK.cmark_parser_free(parser)
