"""Text from a bundle (model, node and data set names) on its way into generated C: never as code.

A bundle is data a user may have been sent; its names must not be able to close a comment, start a
preprocessor line or end a string literal in model.c. Three ways in, each with one function here:
  c_ident    a C identifier derived from a name: ASCII letters, digits and '_' only, unique per model
  c_comment  text inside /* ... */: printable ASCII without '*/', '/*', '??' (trigraphs) or backslashes;
             anything else is written as an escape like \\x0a or \\u00e9
  c_string   text inside "...": every byte outside printable ASCII, and '"', '\\' and '?', as an octal escape
"""
from __future__ import annotations

import re

_IDENT_OK = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_IDENT = 48     # long enough for any real layer name; C99 guarantees 63 significant characters


def c_ident(name: str, taken: set[str] | None = None, fallback: str = "l") -> str:
    """A C identifier for `name`: non-ASCII-alphanumerics become '_', a leading digit gets `fallback_`,
    and a name that collides with one in `taken` (then added to it) gets a numeric suffix."""
    s = "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in str(name))[:MAX_IDENT]
    if not s or not (s[0].isalpha() or s[0] == "_"):
        s = f"{fallback}_{s}"
    if taken is not None:
        base, i = s, 1
        while s in taken:
            s = f"{base}_{i}"
            i += 1
        taken.add(s)
    assert _IDENT_OK.match(s), s
    return s


def c_comment(text) -> str:
    """`text` made safe to stand inside a C block comment, on one line."""
    out = []
    for ch in str(text):
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif o < 0x100:
            out.append(f"\\x{o:02x}")
        else:
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    s = "".join(out)
    # '*/' would end the comment and '/*' nests (a -Wcomment warning); '??' starts a trigraph.
    while "*/" in s or "/*" in s or "??" in s:
        s = s.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")
    return s


def c_string(text) -> str:
    """The body of a C string literal (without the quotes) that reads back as `text` encoded in UTF-8."""
    out = []
    for b in str(text).encode("utf-8"):
        ch = chr(b)
        if 0x20 <= b < 0x7F and ch not in '"\\?':
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return "".join(out)
