"""Recrawls end to end: a real Trawl server recrawling a local site that changes between runs.

The site serves pages from a dict the test edits between jobs. An honouring site sends
ETag and Last-Modified and answers 304 to a matching conditional request; an ignoring
site sends neither and answers 200 every time. Each site counts its full (200) answers per
path, so a test sees which downloads a 304 saved.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import pytest

from tests.conftest import TrawlServer
from tests.integration.test_webhooks import Receiver, eventually
from tests.site import Response, Site, SiteFactory, SiteHandler
from tests.store import pgdb

HTML = "text/html; charset=utf-8"
LAST_MODIFIED = formatdate(1_700_000_000, usegmt=True)
MakeServer = Callable[..., Awaitable[TrawlServer]]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    yield from pgdb.fresh_database("trawl_recrawl")


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def trawl(request: pytest.FixtureRequest, make_server: MakeServer) -> TrawlServer:
    """A Trawl server on each backend (SQLite file, fresh PostgreSQL schema)."""
    if request.param == "sqlite":
        return await make_server()
    url: str = request.getfixturevalue("pg_url")
    pgdb.reset_schema(url)
    return await make_server(database_url=url)


def page(title: str, text: str, links: tuple[str, ...] = (), nav: str = "Home") -> str:
    """A page with chrome (nav, footer) around its main content."""
    anchors = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return (
        f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head><body>"
        f"<nav><ul><li>{html.escape(nav)}</li></ul></nav>"
        f"<main><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        f"<ul>{anchors}</ul></main>"
        f"<footer>Footer for {html.escape(nav)}</footer></body></html>"
    )


@dataclass
class ChangingSite:
    """Pages the test edits between runs, served with or without validators."""

    site: Site
    honour: bool  # send ETag/Last-Modified and answer 304 when they match
    pages: dict[str, tuple[int, str]] = field(default_factory=dict)  # path -> (status, html)
    full: Counter[str] = field(default_factory=Counter)  # 200 answers per path
    not_modified: Counter[str] = field(default_factory=Counter)  # 304 answers per path
    conditional: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, path: str, body: str, status: int = 200) -> None:
        with self.lock:
            self.pages[path] = (status, body)
        self.site.route(path, self._serve)

    def drop(self, path: str, status: int = 404) -> None:
        self.set(path, page("Gone", "This page is gone."), status)

    def url(self, path: str) -> str:
        return self.site.url(path)

    def reset_counts(self) -> None:
        with self.lock:
            self.full.clear()
            self.not_modified.clear()
            self.conditional.clear()

    def _serve(self, handler: SiteHandler) -> Response:
        path = handler.route_path
        with self.lock:
            status, body = self.pages[path]
        asked = {
            name: value
            for name, value in handler.headers.items()
            if name.lower() in ("if-none-match", "if-modified-since")
        }
        if asked:
            with self.lock:
                self.conditional.append((path, asked))
        if not self.honour or status != 200:
            if status == 200:
                with self.lock:
                    self.full[path] += 1
            return Response(status=status, body=body.encode(), content_type=HTML)
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
        validators = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        match = handler.headers.get("If-None-Match")
        if match is not None and etag in [tag.strip() for tag in match.split(",")]:
            with self.lock:
                self.not_modified[path] += 1
            return Response(status=304, headers=validators, content_type=HTML)
        with self.lock:
            self.full[path] += 1
        return Response(status=200, body=body.encode(), content_type=HTML, headers=validators)


def changing_site(site_factory: SiteFactory, *, honour: bool) -> ChangingSite:
    return ChangingSite(site=site_factory(pages=0), honour=honour)


def first_version(s: ChangingSite) -> None:
    s.set("/", page("Home", "Welcome.", ("/a", "/b", "/c", "/d", "/g", "/h")))
    s.set("/a", page("A", "Alpha, first edition."))
    s.set("/b", page("B", "Bravo stays the same."))
    s.set("/c", page("C", "Charlie stays the same too."))
    s.set("/d", page("D", "Delta will be deleted."))
    s.set("/g", page("G", "Golf will be gone for good."))
    s.set("/h", page("H", "Hotel keeps its content.", nav="Old menu"))


def second_version(s: ChangingSite) -> None:
    """A edited, E added (linked from the home page), D 404, G 410, H's chrome only."""
    s.set("/", page("Home", "Welcome.", ("/a", "/b", "/c", "/d", "/g", "/h", "/e")))
    s.set("/a", page("A", "Alpha, second edition with more words."))
    s.drop("/d", 404)
    s.drop("/g", 410)
    s.set("/h", page("H", "Hotel keeps its content.", nav="New menu"))
    s.set("/e", page("E", "Echo is new."))


async def recrawl(trawl: TrawlServer, job_id: str, body: Any = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    response = await trawl.client.post(f"/v1/jobs/{job_id}/recrawl", **kwargs)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/jobs/{response.json()['id']}"
    job: dict[str, Any] = response.json()
    return job


async def recrawl_metrics(trawl: TrawlServer) -> dict[str, float]:
    """trawl_recrawl_pages_total by change (process-wide: compare before and after)."""
    text = (await trawl.client.get("/metrics")).text
    found = re.findall(r'^trawl_recrawl_pages_total\{change="(\w+)"\} (\S+)$', text, re.M)
    return {change: float(value) for change, value in found}


def by_url(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["url"]: item for item in results}


TRACKED = ["metadata", "text", "links", "changes"]  # a baseline keeping main contents
PLAIN = ["metadata", "text", "links"]


async def crawl_twice(
    trawl: TrawlServer,
    s: ChangingSite,
    overrides: Any = None,
    formats: list[str] = TRACKED,
    **request: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    first_version(s)
    body = {"url": s.url("/"), "max_depth": 1, "formats": formats}
    first = await trawl.submit(body | request)
    done = await trawl.wait_job(first["id"])
    assert done["status"] == "completed", done
    second_version(s)
    s.reset_counts()
    job = await recrawl(trawl, first["id"], overrides)
    assert job["recrawl_of"] == first["id"]
    finished = await trawl.wait_job(job["id"])
    assert finished["status"] == "completed", finished
    return done, finished


EXPECTED = {
    # Only a link was added: its main content is the same, yet it was downloaded (other
    # bytes), so the new link was followed.
    "/": "unchanged",
    "/a": "changed",
    "/b": "unchanged",
    "/c": "unchanged",
    "/d": "removed",  # 404
    "/g": "removed",  # 410
    "/h": "unchanged",  # only the nav and footer changed: the main content did not
    "/e": "new",
}
# Against a plain job (no main content kept) pages are compared on their stored formats:
# the whole page's text, so a new link or another menu is a change.
EXPECTED_PLAIN = dict(EXPECTED, **{"/": "changed", "/h": "changed"})


@pytest.mark.parametrize("baseline", ["tracked", "plain"])
async def test_recrawl_classifies_every_page_and_saves_downloads_with_304(
    trawl: TrawlServer, site_factory: SiteFactory, baseline: str
) -> None:
    s = changing_site(site_factory, honour=True)
    plain = baseline == "plain"
    before = await recrawl_metrics(trawl)
    first, done = await crawl_twice(trawl, s, formats=PLAIN if plain else TRACKED)
    counted = await recrawl_metrics(trawl)
    # Metrics count what this process classified (here all of it: no page went unreached).
    assert {k: counted[k] - before.get(k, 0) for k in counted} == {
        **done["stats"]["changes"],
        "not_modified": 2,
    }
    results = await trawl.results(done["id"])
    pages = by_url(results)
    expected = EXPECTED_PLAIN if plain else EXPECTED
    assert {url: item["change"] for url, item in pages.items()} == {
        s.url(path): change for path, change in expected.items()
    }
    assert done["stats"]["changes"] == (
        {"new": 1, "changed": 3, "unchanged": 2, "removed": 2}
        if plain
        else {"new": 1, "changed": 1, "unchanged": 4, "removed": 2}
    )
    assert "changes" not in first["stats"] and first["recrawl_of"] is None

    # Every page fetched before was asked for conditionally; the unchanged ones that the
    # server could vouch for (B, C: same bytes) were not downloaded again.
    asked = {path for path, _ in s.conditional}
    assert asked == {"/", "/a", "/b", "/c", "/d", "/g", "/h"}
    assert s.not_modified == Counter({"/b": 1, "/c": 1})
    assert s.full == Counter({"/": 1, "/a": 1, "/h": 1, "/e": 1})

    # A 304 page carries the previous content, re-dated; it says it was not downloaded.
    b = pages[s.url("/b")]
    assert b["text"] and "Bravo stays the same." in b["text"]
    assert b["not_modified"] is True and b["status_code"] == 200
    previous = by_url(await trawl.results(first["id"]))
    assert b["previous_fetched_at"] == previous[s.url("/b")]["fetched_at"]
    assert b["fetched_at"] > b["previous_fetched_at"]
    assert pages[s.url("/e")]["previous_fetched_at"] is None
    assert pages[s.url("/d")]["status_code"] == 404
    assert pages[s.url("/d")]["error"]["code"] == "http_error"
    # A plain job's results have no change fields at all.
    assert all("change" not in item for item in previous.values())


async def test_recrawl_without_validators_classifies_by_content(
    trawl: TrawlServer, site_factory: SiteFactory
) -> None:
    s = changing_site(site_factory, honour=False)
    _, done = await crawl_twice(trawl, s)  # a tracked baseline: main contents compared
    pages = by_url(await trawl.results(done["id"]))
    assert {url: item["change"] for url, item in pages.items()} == {
        s.url(path): change for path, change in EXPECTED.items()
    }
    # Nothing to revalidate with: no conditional request, every live page downloaded.
    assert s.conditional == []
    assert s.not_modified == Counter()
    assert s.full == Counter({path: 1 for path in ("/", "/a", "/b", "/c", "/h", "/e")})
    assert not any(item.get("not_modified") for item in pages.values())


async def test_recrawl_overrides_and_pages_no_longer_reached(
    trawl: TrawlServer, site_factory: SiteFactory
) -> None:
    s = changing_site(site_factory, honour=True)
    # The override excludes B and C: not reached by the recrawl, they are reported removed
    # (as skipped results, not fetched). `changes` asks for diffs.
    overrides = {
        "exclude": [".*/[bc]$"],
        "formats": ["metadata", "text", "links", "changes"],
    }
    first, done = await crawl_twice(trawl, s, overrides, formats=PLAIN)
    assert done["request"]["exclude"] == [".*/[bc]$"]
    assert done["request"]["max_depth"] == 1  # the rest comes from the previous request
    pages = by_url(await trawl.results(done["id"]))
    expected = dict(EXPECTED_PLAIN, **{"/b": "removed", "/c": "removed"})
    assert {url: item["change"] for url, item in pages.items()} == {
        s.url(path): change for path, change in expected.items()
    }
    assert done["stats"]["changes"] == {"new": 1, "changed": 3, "unchanged": 0, "removed": 4}
    assert s.full["/b"] == s.full["/c"] == s.not_modified["/b"] == 0
    gone = pages[s.url("/b")]
    assert gone["error"]["code"] == "not_reached"
    assert gone["title"] == "B" and gone["status_code"] is None
    assert gone["previous_fetched_at"] is not None and gone["fetched_at"] is not None
    # Changed pages have their diff (of the stored text: the plain job kept no main
    # content); the others have none.
    diff = pages[s.url("/a")]["changes"]
    assert diff.startswith("--- ") and "\n+++ " in diff
    assert "-Alpha, first edition." in diff
    assert "+Alpha, second edition with more words." in diff
    assert "-Old menu\n+New menu" in pages[s.url("/h")]["changes"]
    assert "+/e" in pages[s.url("/")]["changes"]  # the new link's text
    assert all(
        item.get("changes") is None
        for url, item in pages.items()
        if url not in {s.url("/a"), s.url("/h"), s.url("/")}
    )
    # The formats changed, so nothing could be revalidated: no conditional requests.
    assert s.conditional == []

    # ?change= filters (with ?outcome= too), on both result routes.
    changed = await trawl.results(done["id"], change="removed")
    assert sorted(item["url"] for item in changed) == sorted(
        s.url(p) for p in ("/b", "/c", "/d", "/g")
    )
    skipped = await trawl.results(done["id"], change="removed", outcome="skipped")
    assert sorted(item["url"] for item in skipped) == [s.url("/b"), s.url("/c")]
    response = await trawl.client.get(
        f"/v1/jobs/{done['id']}/results.ndjson", params={"change": "new"}
    )
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["url"] for line in lines] == [s.url("/e")]
    # A plain job's results have no change: any filter finds nothing there.
    assert await trawl.results(first["id"], change="unchanged") == []


async def test_recrawl_of_a_recrawl_compares_with_the_one_before(
    trawl: TrawlServer, site_factory: SiteFactory
) -> None:
    s = changing_site(site_factory, honour=True)
    _, second = await crawl_twice(trawl, s)
    s.set("/d", page("D", "Delta is back."))  # was 404: back, so new again
    s.reset_counts()
    third = await trawl.wait_job((await recrawl(trawl, second["id"]))["id"])
    assert third["recrawl_of"] == second["id"]
    pages = by_url(await trawl.results(third["id"]))
    assert {url: item["change"] for url, item in pages.items()} == {
        s.url("/"): "unchanged",
        s.url("/a"): "unchanged",
        s.url("/b"): "unchanged",
        s.url("/c"): "unchanged",
        s.url("/d"): "new",
        s.url("/g"): "unchanged",  # gone then, still gone
        s.url("/h"): "unchanged",
        s.url("/e"): "unchanged",
    }
    # Everything that was a page last time was revalidated, and only D was downloaded
    # (B and C's 304s in the second job carried their validators forward).
    assert s.full == Counter({"/d": 1})
    assert set(s.not_modified) == {"/", "/a", "/b", "/c", "/h", "/e"}


async def test_job_changed_webhook(
    trawl: TrawlServer, site_factory: SiteFactory, hook_receiver: Receiver
) -> None:
    receiver = hook_receiver
    s = changing_site(site_factory, honour=True)
    hook = {"url": receiver.url(), "events": ["job.changed", "job.completed"]}
    first, done = await crawl_twice(trawl, s, webhook=hook)
    deliveries = await eventually(lambda: len(receiver.accepted()) >= 3 and receiver.accepted())
    assert [(d.event_type, d.json["job_id"]) for d in deliveries] == [
        ("job.completed", first["id"]),
        ("job.changed", done["id"]),
        ("job.completed", done["id"]),
    ]
    changed = deliveries[1].json
    assert changed["data"]["changes"] == done["stats"]["changes"]
    assert changed["job"]["stats"]["changes"] == done["stats"]["changes"]
    assert sorted((p["url"], p["change"]) for p in changed["data"]["pages"]) == sorted(
        (s.url(path), change)
        for path, change in EXPECTED.items()
        if change in ("new", "changed", "removed")
    )
    assert deliveries[1].signed()

    # Nothing changed since: a recrawl completes without job.changed.
    s.reset_counts()
    third = await trawl.wait_job((await recrawl(trawl, done["id"]))["id"])
    assert third["stats"]["changes"]["unchanged"] == 8
    await eventually(lambda: len(receiver.accepted()) >= 4)
    assert [d.event_type for d in receiver.accepted() if d.json["job_id"] == third["id"]] == [
        "job.completed"
    ]


async def test_recrawl_errors(trawl: TrawlServer, site_factory: SiteFactory) -> None:
    s = changing_site(site_factory, honour=True)
    first_version(s)
    response = await trawl.client.post("/v1/jobs/no-such-job/recrawl")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    job = await trawl.submit({"url": s.url("/"), "max_depth": 1})
    await trawl.wait_job(job["id"])
    for body, field_name in [
        ({"max_depth": "deep"}, "max_depth"),
        ({"unknown": 1}, "unknown"),
        ({"formats": ["pdf"]}, "formats[0]"),
        ([1, 2], "body"),
    ]:
        response = await trawl.client.post(f"/v1/jobs/{job['id']}/recrawl", json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in response.json()["errors"]] == [field_name]
    response = await trawl.client.get(f"/v1/jobs/{job['id']}/results", params={"change": "x"})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["change"]
    response = await trawl.client.get(
        f"/v1/jobs/{job['id']}/results.ndjson", params={"change": "x"}
    )
    assert response.status_code == 422
    # An empty JSON body and no body at all both mean "no overrides".
    again = await recrawl(trawl, job["id"], {})
    assert again["request"] == job["request"]
    assert again["stats"]["changes"] == {"new": 0, "changed": 0, "unchanged": 0, "removed": 0}
    # A job still running cannot be recrawled yet.
    response = await trawl.client.post(f"/v1/jobs/{again['id']}/recrawl")
    if (await trawl.job(again["id"]))["status"] in ("queued", "running"):
        assert response.status_code == 409, response.text
    await trawl.wait_job(again["id"])
    # The same Idempotency-Key replays the same recrawl.
    headers = {"Idempotency-Key": "recrawl-1"}
    one = await trawl.client.post(f"/v1/jobs/{job['id']}/recrawl", headers=headers)
    two = await trawl.client.post(f"/v1/jobs/{job['id']}/recrawl", headers=headers)
    assert one.status_code == two.status_code == 202
    assert one.json()["id"] == two.json()["id"]
    assert two.headers["idempotent-replayed"] == "true"


async def test_pages_no_longer_linked_are_removed(
    trawl: TrawlServer, site_factory: SiteFactory, hook_receiver: Receiver
) -> None:
    receiver = hook_receiver
    s = changing_site(site_factory, honour=True)
    s.set("/", page("Home", "Welcome.", ("/hub", "/dropped")))
    s.set("/seed2", page("Second seed", "Nobody links here."))
    s.set("/hub", page("Hub", "The hub stays the same.", ("/kept",)))
    s.set("/kept", page("Kept", "Linked from the hub only."))
    s.set("/dropped", page("Dropped", "Only the home page linked here."))
    hook = {"url": receiver.url(), "events": ["job.changed"]}
    first = await trawl.submit(
        {
            "urls": [s.url("/"), s.url("/seed2")],
            "max_depth": 2,
            "formats": TRACKED,
            "webhook": hook,
        }
    )
    assert (await trawl.wait_job(first["id"]))["status"] == "completed"

    # The home page drops its link to /dropped, which is still served (edited: so it is
    # downloaded, and counted as changed until the recrawl completes). /hub answers 304:
    # its links (to /kept) are not seen again but carried forward with its result.
    s.set("/", page("Home", "Welcome.", ("/hub",)))
    s.set("/dropped", page("Dropped", "Only the home page linked here, now edited."))
    s.reset_counts()
    done = await trawl.wait_job((await recrawl(trawl, first["id"]))["id"])
    assert done["status"] == "completed", done
    pages = by_url(await trawl.results(done["id"]))
    assert {url: item["change"] for url, item in pages.items()} == {
        s.url("/"): "unchanged",  # downloaded; its main content (links aside) is the same
        s.url("/seed2"): "unchanged",  # a seed: never unlinked, though nothing links it
        s.url("/hub"): "unchanged",
        s.url("/kept"): "unchanged",  # linked from a 304 page
        s.url("/dropped"): "removed",
    }
    assert s.not_modified == Counter({"/seed2": 1, "/hub": 1, "/kept": 1})
    assert s.full == Counter({"/": 1, "/dropped": 1})
    assert pages[s.url("/hub")]["not_modified"] is True
    dropped = pages[s.url("/dropped")]
    # Fetched now (200) and kept as fetched; the reason says why it counts as removed.
    assert dropped["removed_reason"] == "unlinked"
    assert dropped["status_code"] == 200 and dropped["error"] is None
    assert "Only the home page linked here, now edited." in dropped["text"]
    assert all("removed_reason" not in item for url, item in pages.items() if item is not dropped)
    assert done["stats"]["changes"] == {"new": 0, "changed": 0, "unchanged": 4, "removed": 1}
    removed = await trawl.results(done["id"], change="removed")
    assert [item["url"] for item in removed] == [s.url("/dropped")]
    deliveries = await eventually(lambda: receiver.accepted() or None)
    changed = deliveries[0].json
    assert changed["job_id"] == done["id"]
    assert changed["data"]["changes"] == done["stats"]["changes"]
    assert changed["data"]["pages"] == [{"url": s.url("/dropped"), "change": "removed"}]

    # Still unlinked: the next recrawl neither fetches it nor reports it again ...
    s.reset_counts()
    third = await trawl.wait_job((await recrawl(trawl, done["id"]))["id"])
    pages = by_url(await trawl.results(third["id"]))
    assert s.url("/dropped") not in pages
    assert s.full["/dropped"] == s.not_modified["/dropped"] == 0
    assert third["stats"]["changes"] == {"new": 0, "changed": 0, "unchanged": 4, "removed": 0}

    # ... and once linked again it is new.
    s.set("/", page("Home", "Welcome.", ("/hub", "/dropped")))
    fourth = await trawl.wait_job((await recrawl(trawl, third["id"]))["id"])
    pages = by_url(await trawl.results(fourth["id"]))
    assert pages[s.url("/dropped")]["change"] == "new"
    assert fourth["stats"]["changes"] == {"new": 1, "changed": 0, "unchanged": 4, "removed": 0}


async def test_pages_listed_in_the_sitemap_stay_linked(
    trawl: TrawlServer, site_factory: SiteFactory
) -> None:
    site = site_factory(orphans=2, pages=3)
    request = {"url": site.url("/"), "max_depth": 1, "use_sitemap": True, "formats": TRACKED}
    first = await trawl.wait_job((await trawl.submit(request))["id"])
    before = {item["url"] for item in await trawl.results(first["id"])}
    orphans = {site.url("/orphan/0"), site.url("/orphan/1")}
    assert orphans <= before
    done = await trawl.wait_job((await recrawl(trawl, first["id"]))["id"])
    pages = by_url(await trawl.results(done["id"]))
    # The orphans are linked by no page, only listed in the sitemap the seed reads.
    assert {url: pages[url]["change"] for url in orphans} == dict.fromkeys(orphans, "unchanged")
    assert done["stats"]["changes"]["removed"] == 0
    assert set(pages) == before
