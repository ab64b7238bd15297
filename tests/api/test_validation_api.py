"""Every bad input is a problem+json naming what was wrong; never a 500, never a leak."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import SEED, assert_problem, post_json
from tests.conftest import TrawlServer

# One server for the module (hundreds of cases): they run on its event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


def job(**fields: Any) -> dict[str, Any]:
    return {"urls": [SEED], **fields}


BAD_BODIES: list[tuple[str, Any, str]] = [
    # (case, body, field the 422 must name)
    ("missing urls", {}, "urls"),
    ("only options", {"max_depth": 1}, "urls"),
    ("empty urls", {"urls": []}, "urls"),
    ("1001 urls", {"urls": [f"{SEED}{i}" for i in range(1001)]}, "urls"),
    ("urls not a list", {"urls": SEED}, "urls"),
    ("url not a string", {"url": 5}, "url"),
    ("url is a list", {"url": [SEED]}, "url"),
    ("url and urls", {"url": SEED, "urls": [SEED]}, "url"),
    ("relative", {"urls": ["/path"]}, "urls[0]"),
    ("no scheme", {"urls": ["example.com/path"]}, "urls[0]"),
    ("protocol-relative", {"urls": ["//example.com/"]}, "urls[0]"),
    ("second of three", {"urls": [SEED, "nope", SEED]}, "urls[1]"),
    ("file scheme", {"urls": ["file:///etc/passwd"]}, "urls[0]"),
    ("ftp scheme", {"urls": ["ftp://example.com/"]}, "urls[0]"),
    ("javascript scheme", {"urls": ["javascript:alert(1)"]}, "urls[0]"),
    ("data scheme", {"urls": ["data:text/html,<h1>hi</h1>"]}, "urls[0]"),
    ("gopher scheme", {"urls": ["gopher://example.com/"]}, "urls[0]"),
    ("credentials", {"urls": ["http://user:pass@example.com/"]}, "urls[0]"),
    ("user only", {"urls": ["https://user@example.com/"]}, "urls[0]"),
    ("empty host", {"urls": ["http:///path"]}, "urls[0]"),
    ("space in host", {"urls": ["http://exa mple.com/"]}, "urls[0]"),
    ("underscore-less garbage host", {"urls": ["http://-bad-.com/"]}, "urls[0]"),
    ("empty label", {"urls": ["http://a..b/"]}, "urls[0]"),
    ("host too long", {"urls": ["http://" + "a" * 300 + ".com/"]}, "urls[0]"),
    ("label too long", {"urls": ["http://" + "a" * 64 + ".com/"]}, "urls[0]"),
    ("bad punycode", {"urls": ["http://xn--a.com/"]}, "urls[0]"),
    ("symbols in host", {"urls": ["http://exa$mple.com/"]}, "urls[0]"),
    ("unclosed ipv6", {"urls": ["http://[::1/"]}, "urls[0]"),
    ("bad ipv6", {"urls": ["http://[12345::]/"]}, "urls[0]"),
    ("ipv6 zone", {"urls": ["http://[fe80::1%25eth0]/"]}, "urls[0]"),
    ("port out of range", {"urls": ["http://example.com:99999/"]}, "urls[0]"),
    ("port not a number", {"urls": ["http://example.com:http/"]}, "urls[0]"),
    ("control character", {"urls": ["http://example.com/\u0000"]}, "urls[0]"),
    ("newline", {"urls": ["http://example.com/\nHost: evil"]}, "urls[0]"),
    ("lone surrogate", {"urls": ["http://example.com/\ud800"]}, "urls[0]"),
    ("empty string", {"urls": [""]}, "urls[0]"),
    ("negative depth", job(max_depth=-1), "max_depth"),
    ("float depth", job(max_depth=1.5), "max_depth"),
    ("integral float depth", job(max_depth=1.0), "max_depth"),
    ("bool depth", job(max_depth=True), "max_depth"),
    ("string depth", job(max_depth="1"), "max_depth"),
    ("null depth", job(max_depth=None), "max_depth"),
    ("depth over cap", job(max_depth=101), "max_depth"),
    ("zero pages", job(max_pages=0), "max_pages"),
    ("negative pages", job(max_pages=-5), "max_pages"),
    ("bool pages", job(max_pages=False), "max_pages"),
    ("string pages", job(max_pages="10"), "max_pages"),
    ("float pages", job(max_pages=10.5), "max_pages"),
    ("pages over cap", job(max_pages=100_001), "max_pages"),
    ("huge pages", job(max_pages=10**30), "max_pages"),
    ("unknown field", job(depth=1), "depth"),
    ("unknown nested", job(webhook={"url": SEED, "secret": "x"}), "webhook.secret"),
    ("scope value", job(scope="everywhere"), "scope"),
    ("scope type", job(scope=1), "scope"),
    ("formats value", job(formats=["pdf"]), "formats[0]"),
    ("formats second", job(formats=["text", "screenshot"]), "formats[1]"),
    ("formats type", job(formats="text"), "formats"),
    ("formats item type", job(formats=[1]), "formats[0]"),
    ("include type", job(include="a"), "include"),
    ("include item type", job(include=[1]), "include[0]"),
    ("include bad regex", job(include=["("]), "include[0]"),
    ("exclude bad regex", job(exclude=["ok", "[a-"]), "exclude[1]"),
    ("exclude bad repeat", job(exclude=["*a"]), "exclude[0]"),
    ("selectors type", job(selectors=["h1"]), "selectors"),
    ("selector bad css", job(selectors={"title": "h1[["}), "selectors.title"),
    ("selector empty css", job(selectors={"title": "  "}), "selectors.title"),
    ("selector empty name", job(selectors={"": "h1"}), 'selectors[""]'),
    ("selector name spaces", job(selectors={"my name": "h1[["}), 'selectors["my name"]'),
    ("selector value type", job(selectors={"a": 5}), "selectors.a"),
    ("selector object css", job(selectors={"a": {"css": "::nope("}}), "selectors.a"),
    ("selector object type", job(selectors={"a": {"css": 1}}), "selectors.a.css"),
    ("selector object extra", job(selectors={"a": {"css": "h1", "x": 1}}), "selectors.a.x"),
    ("respect_robots string", job(respect_robots="yes"), "respect_robots"),
    ("respect_robots int", job(respect_robots=1), "respect_robots"),
    ("webhook string", job(webhook="http://example.com/hook"), "webhook"),
    ("webhook without url", job(webhook={"events": ["job.completed"]}), "webhook.url"),
    ("webhook bad url", job(webhook={"url": "ftp://example.com/"}), "webhook.url"),
    ("webhook creds", job(webhook={"url": "http://u:p@example.com/"}), "webhook.url"),
    ("webhook event", job(webhook={"url": SEED, "events": ["job.exploded"]}), "webhook.events[0]"),
    (
        "webhook events type",
        job(webhook={"url": SEED, "events": "job.completed"}),
        "webhook.events",
    ),
    ("per_host_concurrency zero", job(per_host_concurrency=0), "per_host_concurrency"),
    ("per_host_concurrency cap", job(per_host_concurrency=10_000), "per_host_concurrency"),
    ("per_host_delay negative", job(per_host_delay=-1), "per_host_delay"),
    ("per_host_delay string", job(per_host_delay="1"), "per_host_delay"),
    ("per_host_delay huge", job(per_host_delay=1e308), "per_host_delay"),
    ("max_retries", job(max_retries=11), "max_retries"),
    ("body is a list", [SEED], "body"),
    ("body is a string", SEED, "body"),
    ("body is null", None, "body"),
    ("body is a number", 7, "body"),
]


@pytest.mark.parametrize(
    ("body", "field"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
async def test_bad_body_is_a_422_naming_the_field(
    module_api: TrawlServer, body: Any, field: str
) -> None:
    assert_problem(await post_json(module_api, body), 422, field)


# Every field of the request, with values of the wrong JSON type.
WRONG_TYPES: dict[str, list[Any]] = {
    "urls": [None, 1, True, {"a": SEED}, SEED],
    "max_depth": ["1", 1.5, True, [], {}],
    "max_pages": ["1", 1.5, True, [], {}],
    "scope": [1, True, [], {}, None],
    "include": [None, "a", 1, {}, [1]],
    "exclude": [None, "a", 1, {}, [None]],
    "formats": [None, "text", 1, {}, [True]],
    "selectors": [None, "h1", 1, [], {"a": []}],
    "respect_robots": [None, "true", 1, 0, []],
    "webhook": ["x", 1, True, [], {"url": 1}],
    "only_main_content": [None, 1, "false"],
    "respect_nofollow": [None, 1, "false"],
    "follow_non_html": [None, 1, "false"],
    "use_sitemap": [None, 1, "false"],
    "per_host_concurrency": ["2", 1.5, True],
    "per_host_delay": ["1", True, []],
    "max_retries": ["1", 1.5, True],
}
WRONG_TYPE_CASES = [(name, value) for name, values in WRONG_TYPES.items() for value in values]


@pytest.mark.parametrize(
    ("name", "value"), WRONG_TYPE_CASES, ids=[f"{n}={json.dumps(v)}" for n, v in WRONG_TYPE_CASES]
)
async def test_wrong_type_for_every_field(module_api: TrawlServer, name: str, value: Any) -> None:
    body = assert_problem(await post_json(module_api, job(**{name: value})), 422)
    fields = [error["field"] for error in body["errors"]]
    assert fields and all(field.startswith(name) for field in fields), fields


async def test_every_problem_is_reported_at_once(module_api: TrawlServer) -> None:
    body = {"urls": ["ftp://x/", SEED, "/rel"], "max_depth": -1, "formats": ["pdf"], "x": 1}

    problem = assert_problem(await post_json(module_api, body), 422)

    fields = {error["field"] for error in problem["errors"]}
    assert fields == {"urls[0]", "urls[2]", "max_depth", "formats[0]", "x"}
    assert "urls[0]" in problem["detail"]


# -- transport-level problems --------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b"   ",
        b"{'urls': []}",
        b'{"urls": ["http://example.com/"],}',
        b'{"urls": ["http://example.com/"]} trailing',
        b"\xff\xfe\x00",
        b'{"urls": ["\xff"]}',
        b'{"urls": ["http://example.com/"], "max_depth": NaN}',
        b'{"urls": ["http://example.com/"], "max_pages": Infinity}',
        b'{"urls": ["http://example.com/"], "max_pages": -Infinity}',
        b'{"max_pages": 1' + b"0" * 5000 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    ],
    ids=lambda raw: repr(raw[:40]),
)
async def test_malformed_json_is_a_400(module_api: TrawlServer, raw: bytes) -> None:
    response = await module_api.client.post(
        "/v1/jobs", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "json",
        "application/jsonx",
    ],
)
async def test_non_json_content_type_is_a_415(
    module_api: TrawlServer, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await module_api.client.post(
        "/v1/jobs", content=json.dumps({"urls": [SEED]}).encode(), headers=headers
    )
    assert_problem(response, 415)


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.trawl+json"],
)
async def test_json_content_type_variants_are_accepted(
    module_api: TrawlServer, content_type: str
) -> None:
    response = await module_api.client.post(
        "/v1/jobs",
        content=json.dumps({"urls": [SEED]}).encode(),
        headers={"content-type": content_type},
    )
    assert response.status_code == 202, response.text


async def test_oversize_body_is_a_413(module_api: TrawlServer) -> None:
    limit = module_api.settings.request_max_size
    body = json.dumps({"urls": [SEED], "include": ["x" * limit]}).encode()

    response = await module_api.client.post(
        "/v1/jobs", content=body, headers={"content-type": "application/json"}
    )

    assert_problem(response, 413)
    # The server keeps serving.
    assert (await module_api.client.get("/health")).status_code == 200


async def test_unicode_and_idn_urls_are_accepted_and_canonical(module_api: TrawlServer) -> None:
    created = await module_api.submit(
        {"urls": ["http://Bücher.example/ä?b=2&a=1", "http://[::1]:8080"]}
    )

    assert created["request"]["urls"] == [
        "http://xn--bcher-kva.example/%C3%A4?a=1&b=2",
        "http://[::1]:8080/",
    ]
