"""Response headers more than one router writes."""

from __future__ import annotations

from urllib.parse import quote


def attachment(filename: str) -> str:
    """Content-Disposition with an ASCII fallback and the exact name per RFC 6266/5987."""
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
