"""Bytes to text for an HTML page, the way browsers pick the encoding.

A byte-order mark, then the HTTP charset, then `<meta charset>` or http-equiv, each tried
strictly in that order; if all of them fail, the first one is used with replacement
characters. An undeclared page is tried as UTF-8, then charset-normalizer guesses from
the first 64 KiB, and windows-1252 is the last resort. Following WHATWG, a BOM beats the
header, ISO-8859-1 and ASCII labels decode as windows-1252, and a UTF-16 label in a
`<meta>` means UTF-8. Only WHATWG labels are honoured (service.crawl.encodings: a fixed
table, so a page cannot pick an arbitrary Python codec or grow the codec cache). Codecs
are named by their Python names (e.g. "cp1251").
"""

from __future__ import annotations

import codecs

from bs4.dammit import EncodingDetector
from charset_normalizer import from_bytes

from service.crawl.encodings import codec_for_label, is_whatwg_codec

__all__ = ["BinaryContentError", "codec_for", "decode_html"]


class BinaryContentError(ValueError):
    """The body looks like binary data, not text."""


_DETECT_BYTES = 64 * 1024
_SNIFF_BYTES = 1024
_MAX_CONTROL_RATIO = 0.05
# C0 controls that never appear in text (tab, LF, FF, CR and ESC, used by ISO-2022, do),
# plus DEL. Translating these away and comparing lengths counts them at C speed.
_CONTROL_BYTES = bytes([*range(0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])


# What bs4 names a byte-order mark; UTF-32 has no WHATWG label but its BOM is unambiguous.
_BOM_CODECS = {
    "utf-8": "utf-8",
    "utf-16le": "utf-16-le",
    "utf-16be": "utf-16-be",
    "utf-32le": "utf-32-le",
    "utf-32be": "utf-32-be",
}


def codec_for(label: str | None, *, from_meta: bool = False) -> str | None:
    """Python codec for a WHATWG charset label, mapped the way browsers map it; else None."""
    name = codec_for_label(label)
    if name is None:
        return None
    if from_meta and name.startswith(("utf-16", "utf-32")):
        # A meta tag readable as ASCII cannot be UTF-16; WHATWG says to read UTF-8.
        return "utf-8"
    return name


def _guessed_codec(name: str | None) -> str | None:
    """charset-normalizer's guess (a Python codec name from its fixed list), if WHATWG's."""
    if not name:
        return None
    by_label = codec_for_label(name.replace("_", "-"))
    if by_label is not None:
        return by_label
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        return None
    return canonical if is_whatwg_codec(canonical) else None


def decode_html(body: bytes, http_charset: str | None) -> tuple[str, str]:
    """Decode the body; return the text and the codec used. BinaryContentError for binary."""
    data, bom = EncodingDetector.strip_byte_order_mark(body)
    declared: list[str] = []
    for codec in (
        _BOM_CODECS.get(bom or ""),
        codec_for(http_charset),
        codec_for(EncodingDetector.find_declared_encoding(data, is_html=True), from_meta=True),
    ):
        if codec is not None and codec not in declared:
            declared.append(codec)
    if not (declared and declared[0].startswith(("utf-16", "utf-32"))):
        sample = data[:_SNIFF_BYTES]
        controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
        if controls > len(sample) * _MAX_CONTROL_RATIO:
            raise BinaryContentError("content looks binary, not HTML")
    for codec in declared:
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            continue
    for codec in declared:
        try:
            return data.decode(codec, errors="replace"), codec
        except LookupError:  # a non-text codec such as "zlib" named in a header
            continue
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[:_DETECT_BYTES]).best()
    guessed = _guessed_codec(best.encoding) if best is not None else None
    if guessed is not None:
        try:
            return data.decode(guessed), guessed
        except (UnicodeDecodeError, LookupError):
            pass
    return data.decode("cp1252", errors="replace"), "cp1252"
