"""Text that is safe to write into a one-line log record: control, format and other invisible
characters (a newline in an event id would forge a log line) are shown as escapes."""

from __future__ import annotations

import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_UNSAFE = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})


def escape(text: str) -> str:
    if text.isprintable() and "\\" not in text:
        return text  # the common case, nothing to do
    out = []
    for ch in text:
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif unicodedata.category(ch) in _UNSAFE:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def field(value: object) -> str:
    """A ``key=value`` log value: escaped, and double-quoted when it has spaces, quotes or
    ``=`` (so one field cannot pass for several)."""
    text = escape(value if isinstance(value, str) else str(value))
    if text == "" or any(c in text for c in ' "='):
        return '"' + text.replace('"', '\\"') + '"'
    return text
