"""The WHATWG Encoding Standard's labels, as a fixed table onto Python codecs.

A charset label comes from the crawled page (Content-Type, `<meta charset>`): handing it
to `codecs.lookup` lets the page pick any Python codec (`punycode` costs 27 s of CPU on
1 MB; `zlib`, `rot13` are not text encodings at all), and the codec registry caches
every unknown label forever (unique 90 KB labels grew a parser by 90 KB a page). Only
the labels a browser knows are accepted here, found by a dictionary lookup after a
length check; nothing else reaches the registry.
"""

from __future__ import annotations

import codecs

__all__ = ["MAX_LABEL_LENGTH", "WHATWG_CODECS", "codec_for_label", "is_whatwg_codec"]

# The longest WHATWG label is "cseucpkdfmtjapanese" (19 characters).
MAX_LABEL_LENGTH = 40

# https://encoding.spec.whatwg.org/#names-and-labels: Python codec -> its labels.
# "replacement" and "x-user-defined" are left out: they decode to nothing useful, and an
# unknown label falls back to detection, which is the safer reading for a crawler.
_LABELS: dict[str, str] = {
    "utf-8": "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8",
    "cp866": "866 cp866 csibm866 ibm866",
    "iso8859-2": (
        "csisolatin2 iso-8859-2 iso-ir-101 iso8859-2 iso88592 iso_8859-2 iso_8859-2:1987 l2 latin2"
    ),
    "iso8859-3": (
        "csisolatin3 iso-8859-3 iso-ir-109 iso8859-3 iso88593 iso_8859-3 iso_8859-3:1988 l3 latin3"
    ),
    "iso8859-4": (
        "csisolatin4 iso-8859-4 iso-ir-110 iso8859-4 iso88594 iso_8859-4 iso_8859-4:1988 l4 latin4"
    ),
    "iso8859-5": (
        "csisolatincyrillic cyrillic iso-8859-5 iso-ir-144 iso8859-5 iso88595 iso_8859-5 "
        "iso_8859-5:1988"
    ),
    "iso8859-6": (
        "arabic asmo-708 csiso88596e csiso88596i csisolatinarabic ecma-114 iso-8859-6 iso-8859-6-e "
        "iso-8859-6-i iso-ir-127 iso8859-6 iso88596 iso_8859-6 iso_8859-6:1987"
    ),
    "iso8859-7": (
        "csisolatingreek ecma-118 elot_928 greek greek8 iso-8859-7 iso-ir-126 iso8859-7 iso88597 "
        "iso_8859-7 iso_8859-7:1987 sun_eu_greek"
    ),
    "iso8859-8": (
        "csiso88598e csisolatinhebrew hebrew iso-8859-8 iso-8859-8-e iso-ir-138 iso8859-8 iso88598 "
        "iso_8859-8 iso_8859-8:1988 visual csiso88598i iso-8859-8-i logical"
    ),
    "iso8859-10": "csisolatin6 iso-8859-10 iso-ir-157 iso8859-10 iso885910 l6 latin6",
    "iso8859-13": "iso-8859-13 iso8859-13 iso885913",
    "iso8859-14": "iso-8859-14 iso8859-14 iso885914",
    "iso8859-15": "csisolatin9 iso-8859-15 iso8859-15 iso885915 iso_8859-15 l9",
    "iso8859-16": "iso-8859-16",
    "koi8-r": "cskoi8r koi koi8 koi8-r koi8_r",
    "koi8-u": "koi8-ru koi8-u",
    "mac-roman": "csmacintosh mac macintosh x-mac-roman",
    "cp874": "dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874",
    "cp1250": "cp1250 windows-1250 x-cp1250",
    "cp1251": "cp1251 windows-1251 x-cp1251",
    # WHATWG: ISO-8859-1 and ASCII labels mean windows-1252.
    "cp1252": (
        "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 iso8859-1 "
        "iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252"
    ),
    "cp1253": "cp1253 windows-1253 x-cp1253",
    "cp1254": (
        "cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9 iso_8859-9:1989 l5 "
        "latin5 windows-1254 x-cp1254"
    ),
    "cp1255": "cp1255 windows-1255 x-cp1255",
    "cp1256": "cp1256 windows-1256 x-cp1256",
    "cp1257": "cp1257 windows-1257 x-cp1257",
    "cp1258": "cp1258 windows-1258 x-cp1258",
    "mac-cyrillic": "x-mac-cyrillic x-mac-ukrainian",
    # WHATWG's GBK decoder is the gb18030 decoder.
    "gb18030": (
        "chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58 x-gbk gb18030"
    ),
    "big5hkscs": "big5 big5-hkscs cn-big5 csbig5 x-x-big5",
    "euc_jp": "cseucpkdfmtjapanese euc-jp x-euc-jp",
    "iso2022_jp": "csiso2022jp iso-2022-jp",
    "cp932": "csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis",
    "cp949": (
        "cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989 ksc5601 "
        "ksc_5601 windows-949"
    ),
    "utf-16-be": "unicodefffe utf-16be",
    "utf-16-le": "csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le",
}

# Python's own name for each codec (what `codecs.lookup(...).name` says), looked up once
# from this fixed table at import.
WHATWG_CODECS: dict[str, str] = {
    label: codecs.lookup(codec).name
    for codec, labels in _LABELS.items()
    for label in labels.split()
}
_NAMES = frozenset(WHATWG_CODECS.values())
_WHITESPACE = "\t\n\f\r \"'"


def codec_for_label(label: str | None) -> str | None:
    """The Python codec a WHATWG label names; None for anything else (never a lookup)."""
    if not label or len(label) > MAX_LABEL_LENGTH + 8:
        return None
    key = label.strip(_WHITESPACE).lower()
    if len(key) > MAX_LABEL_LENGTH:
        return None
    return WHATWG_CODECS.get(key)


def is_whatwg_codec(name: str) -> bool:
    """Whether a Python codec name (as `codecs.lookup` spells it) is one of the table's."""
    return name in _NAMES
