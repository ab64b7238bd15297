"""What a page turns into, through the public API, for every format and content kind."""

from __future__ import annotations

from typing import Any

from tests.conftest import TrawlServer
from tests.site import CP1251_TEXT, GZIP_TEXT, LATIN1_TEXT, NOCHARSET_TEXT, Site

FIXED_TEXT = (
    "Home | All pages\n\nMain heading\n\nAn introduction with emphasis, strong text and "
    "inline_code(), plus a link to page 1.\n\nLists\n\nFirst bullet\nSecond bullet\n"
    'First step\nSecond step\n\nCode block\n\ndef hello():\n    return "world"\n\n'
    "Table\n\nName\tValue\nalpha\t1\nbeta\t2\n\nRelated links sidebar\n"
    "Footer text \u00a9 Trawl tests"
)

FIXED_MAIN_MARKDOWN = """\
# Main heading

An introduction with *emphasis*, **strong text** and `inline_code()`, plus \
[a link to page 1]({base}/p/1).

## Lists

- First bullet
- Second bullet

1. First step
2. Second step

### Code block

```
def hello():
    return "world"
```

## Table

| Name | Value |
| --- | --- |
| alpha | 1 |
| beta | 2 |"""


async def _scrape(trawl: TrawlServer, url: str, **options: Any) -> dict[str, Any]:
    job = await trawl.submit({"url": url, **options})
    done = await trawl.wait_job(job["id"])
    assert done["status"] == "completed"
    (page,) = await trawl.results(job["id"])
    return page


async def test_every_format_of_a_fixed_page(trawl: TrawlServer, site: Site) -> None:
    page = await _scrape(
        trawl,
        site.url("/fixed"),
        formats=["metadata", "text", "markdown", "links", "html"],
        selectors={
            "sections": "h2",
            "nav_hrefs": {"css": "nav a", "attr": "href"},
            "first_item": {"css": "li", "all": False},
        },
    )
    base = site.base_url
    assert page["url"] == site.url("/fixed") == page["final_url"]
    assert page["status_code"] == 200 and page["content_type"] == "text/html"
    assert page["depth"] == 0 and page["error"] is None
    assert page["title"] == "Fixed page"
    assert page["text"] == FIXED_TEXT
    assert "should-not-appear" not in page["text"]
    assert page["markdown"] == (
        f"[Home]({base}/) | [All pages]({base}/p/0)\n\n"
        + FIXED_MAIN_MARKDOWN.format(base=base)
        + "\n\nRelated links sidebar\n\nFooter text \u00a9 Trawl tests"
    )
    assert page["links"] == [f"{base}/", f"{base}/p/0", f"{base}/p/1"]
    assert page["metadata"] == {
        "description": "A fixed page for comparing output formats",
        "og:title": "Fixed page (Open Graph)",
        "canonical": f"{base}/fixed",
        "lang": "en",
    }
    assert page["data"] == {
        "sections": ["Lists", "Table"],
        "nav_hrefs": ["/", "/p/0"],
        "first_item": ["First bullet"],
    }
    assert "<table>" in page["html"]
    assert isinstance(page["elapsed_ms"], float) and page["fetched_at"].endswith("Z")


async def test_only_main_content_drops_boilerplate(trawl: TrawlServer, site: Site) -> None:
    page = await _scrape(
        trawl, site.url("/fixed"), formats=["markdown", "text"], only_main_content=True
    )
    assert page["markdown"] == FIXED_MAIN_MARKDOWN.format(base=site.base_url)
    for boilerplate in ("Home | All pages", "Related links sidebar", "Footer text"):
        assert boilerplate not in page["text"]
    assert "links" not in page and "metadata" not in page


async def test_character_encodings(trawl: TrawlServer, site: Site) -> None:
    job = await trawl.submit(
        {
            "urls": [site.url("/latin1"), site.url("/cp1251"), site.url("/nocharset")],
            "formats": ["text"],
        }
    )
    await trawl.wait_job(job["id"])
    texts = {item["url"].rsplit("/", 1)[1]: item["text"] for item in await trawl.results(job["id"])}
    assert LATIN1_TEXT in texts["latin1"]
    assert CP1251_TEXT in texts["cp1251"]
    assert NOCHARSET_TEXT in texts["nocharset"]


async def test_content_kinds_and_failures_become_results(trawl: TrawlServer, site: Site) -> None:
    paths = [
        "/files/doc.pdf",
        "/empty",
        "/binary",
        "/status/404",
        "/status/500",
        "/redirect/3",
        "/redirect-loop",
        "/gzip",
        "/close-mid-body",
    ]
    job = await trawl.submit(
        {"urls": [site.url(p) for p in paths], "formats": ["text"], "max_retries": 0}
    )
    done = await trawl.wait_job(job["id"])
    assert done["status"] == "completed"
    pages = {
        item["url"].split(site.base_url, 1)[1]: item for item in await trawl.results(job["id"])
    }
    pdf = pages["/files/doc.pdf"]
    # Not HTML by its Content-Type (and follow_non_html is off): kept with its type and
    # size, counted as skipped rather than as a page fetched, its body never read.
    assert (pdf["content_type"], pdf["error"]["code"], pdf.get("text")) == (
        "application/pdf",
        "not_html",
        None,
    )
    assert pdf["size"] > 0
    assert pages["/empty"]["error"] is None and pages["/empty"]["status_code"] == 200
    assert pages["/binary"]["error"]["code"] == "bad_content"
    assert pages["/status/404"]["error"]["code"] == "http_error"
    assert pages["/status/404"]["status_code"] == 404
    assert pages["/status/500"]["status_code"] == 500
    redirected = pages["/redirect/3"]
    assert redirected["final_url"] == site.url("/p/0") and redirected["error"] is None
    assert pages["/redirect-loop"]["error"]["code"] in {"redirect_loop", "too_many_redirects"}
    assert GZIP_TEXT in pages["/gzip"]["text"]
    assert pages["/close-mid-body"]["error"]["code"] == "protocol_error"
    assert done["stats"]["pages_failed"] == 5
    assert done["stats"]["pages_fetched"] == 3
    assert done["stats"]["pages_skipped"] == 1
    ok = await trawl.results(job["id"], outcome="ok")
    assert len(ok) == 3
    failed = await trawl.results(job["id"], outcome="failed")
    assert len(failed) == 5
