"""JSON text as Trawl stores it: compact, and UTF-8 rather than \\u escapes."""

from __future__ import annotations

import json
from typing import Any


def compact_json(value: Any) -> str:
    """`value` as compact JSON with non-ASCII characters kept as they are.

    `ensure_ascii=True` (json's default) writes an emoji as a 12-byte surrogate-pair
    escape: a 20 MB emoji page became 108 MB of stored JSON over three formats. Text
    holding a lone surrogate (from an `&#xD800;` entity) cannot be encoded as UTF-8 by
    the database drivers, so such a document keeps json's escapes instead.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"))
    return text
