"""URL identity and crawl scope: the one canonicalisation used everywhere."""

from __future__ import annotations

import functools
import hashlib
import posixpath
import re
from urllib.parse import urlsplit, urlunsplit

from publicsuffixlist import PublicSuffixList
from w3lib.url import canonicalize_url as _w3lib_canonicalize

_DEFAULT_PORTS = {"http": 80, "https": 443}

# The longest URL (canonical form, characters) Trawl handles: seeds over it are a 422,
# discovered links over it are dropped and counted. Browsers and CDNs cut off around
# 8 KB too; keys in the database are hashes, so this bounds storage, not indexes.
MAX_URL_LENGTH = 8192

# Links to these are almost never HTML; following them wastes fetches (Scrapy's
# IGNORED_EXTENSIONS list, trimmed to what a crawler meets in practice).
NON_HTML_EXTENSIONS = frozenset(
    [
        "7z",
        "7zip",
        "apk",
        "bz2",
        "cdr",
        "dmg",
        "ico",
        "iso",
        "jar",
        "rar",
        "tar",
        "tgz",
        "gz",
        "pak",
        "zip",
        "xz",
        "zst",
        "mp3",
        "wma",
        "ogg",
        "wav",
        "ra",
        "aac",
        "mid",
        "au",
        "aiff",
        "m4a",
        "flac",
        "opus",
        "3gp",
        "asf",
        "asx",
        "avi",
        "mov",
        "mp4",
        "mpg",
        "qt",
        "rm",
        "swf",
        "wmv",
        "m4v",
        "webm",
        "mkv",
        "flv",
        "css",
        "pdf",
        "exe",
        "bin",
        "rss",
        "dat",
        "msi",
        "msu",
        "deb",
        "rpm",
        "woff",
        "woff2",
        "ttf",
        "otf",
        "eot",
        "bmp",
        "gif",
        "jpg",
        "jpeg",
        "png",
        "svg",
        "tif",
        "tiff",
        "webp",
        "avif",
        "psd",
        "ai",
        "eps",
        "xls",
        "xlsx",
        "ppt",
        "pptx",
        "pps",
        "doc",
        "docx",
        "odt",
        "ods",
        "odg",
        "odp",
        "csv",
        "js",
        "mjs",
        "json",
        "map",
        "wasm",
        "torrent",
        # Source code, data and documents: the Python manual's _downloads/ links .py
        # files, repositories link patches and notebooks. (HTML by Content-Type is
        # still what decides for links that do get fetched.)
        "py",
        "pyc",
        "pyi",
        "ipynb",
        "whl",
        "egg",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "cxx",
        "java",
        "class",
        "go",
        "rs",
        "rb",
        "sh",
        "bash",
        "ps1",
        "bat",
        "diff",
        "patch",
        "txt",
        "log",
        "ini",
        "cfg",
        "conf",
        "toml",
        "yaml",
        "yml",
        "sql",
        "db",
        "sqlite",
        "tsv",
        "parquet",
        "npy",
        "npz",
        "pkl",
        "pickle",
        "xml",
        "xsd",
        "atom",
        "rdf",
        "kml",
        "kmz",
        "gpx",
        "ics",
        "vcf",
        "epub",
        "mobi",
        "djvu",
        "rtf",
        "tex",
        "bib",
        "ps",
        "svgz",
        "heic",
        "heif",
        "jp2",
        "mpeg",
        "ogv",
        "oga",
        "m3u",
        "m3u8",
        "srt",
        "vtt",
        "asc",
        "sig",
        "sha256",
        "md5",
        "pem",
        "crt",
        "der",
        "p12",
        "pfx",
        "dll",
        "so",
        "dylib",
        "lz",
        "lzma",
        "bz",
        "z",
        "cab",
        "img",
        "vmdk",
        "ova",
        "qcow2",
        "appimage",
        "ipa",
        "xpi",
        "crx",
        "ttc",
    ]
)


class InvalidURL(ValueError):
    """The string is not an absolute http(s) URL."""


def canonicalize_url(url: str) -> str:
    """Return the canonical form of an absolute http(s) URL (the contract's URL identity).

    Scheme and host lower-cased, IDNA host, default port dropped, empty path as `/`,
    fragment dropped, percent-encoding normalised, query sorted, empty query dropped.
    """
    canonical = _w3lib_canonicalize(url.strip())
    parts = urlsplit(canonical)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidURL(f"not an absolute http(s) URL: {url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"bad port in {url!r}") from exc
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        userinfo = parts.username or ""
        if parts.password is not None:
            userinfo += f":{parts.password}"
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def url_key(url: str) -> bytes:
    """A canonical URL's fixed-size key in the database: the first 16 bytes of its SHA-256.

    Unique keys on the URL itself broke on long URLs (PostgreSQL's btree rows end at
    2704 bytes); 16 bytes leave collisions at about 1 in 10^19 for a billion URLs.
    PostgreSQL computes the same value with its trawl_url_key() function (migration 4).
    """
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).digest()[:16]


def try_canonicalize(url: str) -> str | None:
    """Canonicalise, or return None for anything that is not an http(s) URL."""
    try:
        return canonicalize_url(url)
    except (InvalidURL, ValueError, UnicodeError):
        return None


def host_of(url: str) -> str:
    """Host (with a non-default port) of a canonical URL: the politeness key."""
    netloc = urlsplit(url).netloc
    return netloc.rsplit("@", 1)[-1]


@functools.lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    # The package ships its own snapshot of the Public Suffix List: no download.
    return PublicSuffixList()


@functools.lru_cache(maxsize=4096)
def registrable_domain(hostname: str) -> str:
    """Registrable domain (eTLD+1) of a host; the host itself for IPs and bare suffixes."""
    hostname = hostname.strip("[]").lower().rstrip(".")
    if re.fullmatch(r"[\d.]+|[0-9a-f:]+", hostname):
        return hostname
    return _psl().privatesuffix(hostname) or hostname


def in_scope(url: str, seed: str, scope: str) -> bool:
    """Whether `url` is inside the crawl scope of `seed` (both canonical)."""
    if scope == "any":
        return True
    a, b = urlsplit(url), urlsplit(seed)
    if scope == "same-host":
        return a.hostname == b.hostname
    return registrable_domain(a.hostname or "") == registrable_domain(b.hostname or "")


def looks_like_non_html(url: str) -> bool:
    """Whether the URL's path ends in an extension that is clearly not an HTML page."""
    path = urlsplit(url).path
    ext = posixpath.splitext(path)[1].lower().lstrip(".")
    return ext in NON_HTML_EXTENSIONS
