"""The Scrapy baseline: crawl one site, extract what Trawl extracts, report its own numbers.

Runs inside bench/.venv-scrapy (see scrapy_runner.py):

    python bench/scrapy_spider.py --url http://127.0.0.1:18480/ --out items.jsonl \
        --report report.json

The report holds the crawl's own timing (spider opened to closed), CPU time used by this
process during that window, event-loop lag (an asyncio task that sleeps 10 ms and records
the overshoot) and Scrapy's stats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy import Spider, signals
from scrapy.crawler import CrawlerProcess
from scrapy.http import HtmlResponse, Request, Response
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule

LAG_INTERVAL = 0.010
TEXT_XPATH = "//body//text()[not(ancestor::script) and not(ancestor::style)]"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class BenchSpider(CrawlSpider):
    """Same-host crawl; one item per HTML page with title, description, text and links."""

    name = "bench"

    def __init__(self, url: str, report: str, **kwargs: Any) -> None:
        parts = urlsplit(url)
        self.start_urls = [url]
        self.allowed_domains = [parts.hostname or ""]
        # LinkExtractor's allow_domains compares host:port with the domain, so a site on a
        # non-default port needs a URL prefix instead.
        same_host = rf"^{re.escape(f'{parts.scheme}://{parts.netloc}/')}"
        self.rules = (Rule(LinkExtractor(allow=same_host), callback="parse_page", follow=True),)
        super().__init__(**kwargs)
        self.report_path = Path(report)
        self.lags: list[float] = []
        self._lag_task: asyncio.Task[None] | None = None
        self._opened_at = 0.0
        self._opened_cpu = 0.0

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> BenchSpider:
        spider: BenchSpider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.on_opened, signal=signals.spider_opened)
        crawler.signals.connect(spider.on_closed, signal=signals.spider_closed)
        return spider

    async def start(self) -> AsyncIterator[Request]:
        # Not start_urls: Scrapy sends those with dont_filter=True, so the dupefilter never
        # records the seed and fetches it again when a page links back to it.
        for url in self.start_urls:
            yield Request(url)

    def parse_start_url(self, response: Response, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return self.parse_page(response)

    def parse_page(self, response: Response) -> Iterator[dict[str, Any]]:
        if not isinstance(response, HtmlResponse):
            return
        # The lxml tree parsel already built; .xpath().getall() would wrap every text node
        # in a Selector, which costs more than the extraction itself.
        root = response.selector.root
        text = " ".join(" ".join(root.xpath(TEXT_XPATH)).split())
        yield {
            "url": response.url,
            "status_code": response.status,
            "title": (response.css("title::text").get() or "").strip(),
            "description": response.css('meta[name="description"]::attr(content)').get(),
            "canonical": response.css('link[rel="canonical"]::attr(href)').get(),
            "text": text,
            "links": [response.urljoin(href) for href in root.xpath("//a/@href")],
        }

    def on_opened(self, spider: Spider) -> None:
        self._opened_at = time.perf_counter()
        self._opened_cpu = _cpu_seconds()
        self._lag_task = asyncio.get_running_loop().create_task(self._probe_lag())

    async def _probe_lag(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LAG_INTERVAL)
            self.lags.append(max(0.0, time.perf_counter() - started - LAG_INTERVAL))

    def on_closed(self, spider: Spider, reason: str) -> None:
        seconds = time.perf_counter() - self._opened_at
        cpu = _cpu_seconds() - self._opened_cpu
        if self._lag_task is not None:
            self._lag_task.cancel()
        stats = self.crawler.stats.get_stats()
        report = {
            "reason": reason,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "pages": stats.get("item_scraped_count", 0),
            "lag_samples": len(self.lags),
            "lag_p50_ms": _ms(_percentile(self.lags, 50)),
            "lag_p99_ms": _ms(_percentile(self.lags, 99)),
            "lag_max_ms": _ms(max(self.lags, default=None)),
            "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "stats": {key: _jsonable(value) for key, value in stats.items()},
        }
        self.report_path.write_text(json.dumps(report, indent=2) + "\n")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool | type(None)) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scrapy baseline crawl of the bench site.")
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True, help="JSON-lines feed file")
    parser.add_argument("--report", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-depth", type=int, default=50)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    process = CrawlerProcess(
        settings={
            "ROBOTSTXT_OBEY": True,
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "DEPTH_LIMIT": args.max_depth,
            "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
            "TELNETCONSOLE_ENABLED": False,
            "REMOTE_CONTROL_ENABLED": False,
            "LOG_LEVEL": args.log_level,
            "USER_AGENT": "trawl-bench-scrapy (+http://127.0.0.1/)",
            "FEEDS": {
                Path(args.out).resolve().as_uri(): {"format": "jsonlines", "encoding": "utf8"}
            },
        }
    )
    process.crawl(BenchSpider, url=args.url, report=args.report)
    process.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
