"""Per-job headers and cookies: validation, redaction, what is sent, and where."""

from __future__ import annotations

import pytest

from service import jobheaders
from service.errors import ValidationFailed
from service.models import parse_job_request

SEED = "https://example.com/a"


def errors_of(body: dict[str, object]) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_job_request({"url": SEED, **body}, {})
    assert caught.value.errors
    return caught.value.errors


@pytest.mark.parametrize(
    "name",
    [
        "Connection",
        "keep-alive",
        "Transfer-Encoding",
        "TE",
        "Upgrade",
        "Proxy-Authorization",
        "Host",
        "content-length",
        "Trailer",
        "Accept-Encoding",
    ],
)
def test_hop_by_hop_host_and_length_are_refused(name: str) -> None:
    errors = errors_of({"headers": {name: "x"}})
    assert errors[0]["field"] == f"headers.{name}"
    assert name in errors[0]["message"]


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"X-A": "line\r\nInjected: 1"}, "headers.X-A"),
        ({"X-A": "nul\x00"}, "headers.X-A"),
        ({"Bad Name": "x"}, 'headers["Bad Name"]'),
        ({"": "x"}, "headers"),
        ({"X-A": "v" * 5000}, "headers.X-A"),
        ({f"X-{i}": "v" for i in range(51)}, "headers"),
        ({"Accept": "a", "accept": "b"}, "headers"),
        ({"X-A": 1}, "headers.X-A"),
    ],
)
def test_bad_headers_name_the_field(headers: dict[str, object], field: str) -> None:
    fields = [error["field"] for error in errors_of({"headers": headers})]
    assert any(f == field or f.startswith(field) for f in fields), fields


def test_bad_cookies_name_the_field() -> None:
    assert errors_of({"cookies": {"a": "b c"}})[0]["field"] == "cookies.a"
    assert errors_of({"cookies": {"a;b": "c"}})[0]["field"].startswith("cookies")
    assert errors_of({"cookies": {f"c{i}": "v" for i in range(51)}})[0]["field"] == "cookies"


def test_outgoing_headers_merge_cookies() -> None:
    request = parse_job_request(
        {
            "url": SEED,
            "headers": {"Accept-Language": "fr", "Authorization": "Bearer s3cret"},
            "cookies": {"session": "abc", "theme": "dark"},
        },
        {},
    ).normalised()
    assert jobheaders.outgoing(request) == (
        ("Accept-Language", "fr"),
        ("Authorization", "Bearer s3cret"),
        ("Cookie", "session=abc; theme=dark"),
    )
    both = {"headers": {"cookie": "a=1"}, "cookies": {"b": "2"}}
    assert jobheaders.outgoing(both) == (("cookie", "a=1; b=2"),)


def test_redaction_keeps_names_hides_values() -> None:
    request = {"urls": [SEED], "headers": {"Authorization": "x"}, "cookies": {"s": "y"}}
    assert jobheaders.redact(request) == {
        "urls": [SEED],
        "headers": {"Authorization": "[redacted]"},
        "cookies": {"s": "[redacted]"},
    }
    assert request["headers"] == {"Authorization": "x"}  # the stored copy is untouched


def test_origins_are_scheme_host_and_port() -> None:
    assert jobheaders.origin("https://Example.com/a") == "https://example.com:443"
    assert jobheaders.origin("http://example.com:8080/") == "http://example.com:8080"
    seeds = jobheaders.origins(["https://example.com/a", "https://example.com/b"])
    assert jobheaders.origin("http://example.com/") not in seeds  # not over plain http
    assert jobheaders.origin("https://www.example.com/") not in seeds
