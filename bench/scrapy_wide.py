"""Scrapy on the wide crawl: many hosts, one request per host at a time, a delay between.

Runs inside bench/.venv-scrapy (see scrapy_runner.py):

    python bench/scrapy_wide.py --seed http://127.0.1.1:PORT/seed --report report.json

Broad-crawl settings from Scrapy's documentation, with its best queue for many hosts
(`DownloaderAwarePriorityQueue`, `--queue default` for the stock one). The delay is not
randomised, so both crawlers are held to the same spacing.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response

QUEUES = {
    "dap": "scrapy.pqueues.DownloaderAwarePriorityQueue",
    "default": "scrapy.pqueues.ScrapyPriorityQueue",
}


class WideSpider(Spider):
    name = "wide"

    def __init__(self, seed: str, report: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_urls = [seed]
        self.report_path = report
        self.pages = 0
        self.opened = self.closed_at = 0.0

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> WideSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(spider.spider_closed, signal=signals.spider_closed)
        return spider  # type: ignore[no-any-return]

    def spider_opened(self) -> None:
        self.opened = time.monotonic()

    def spider_closed(self) -> None:
        self.closed_at = time.monotonic()
        with open(self.report_path, "w") as out:
            json.dump({"seconds": self.closed_at - self.opened, "pages": self.pages}, out)

    def parse(self, response: Response) -> Any:
        self.pages += 1
        for href in response.css("a::attr(href)").getall():
            yield Request(response.urljoin(href), callback=self.parse)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--queue", choices=sorted(QUEUES), default="dap")
    args = parser.parse_args()
    process = CrawlerProcess(
        settings={
            "LOG_LEVEL": "WARNING",
            "ROBOTSTXT_OBEY": True,
            "DOWNLOAD_DELAY": args.delay,
            "RANDOMIZE_DOWNLOAD_DELAY": False,
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
            "SCHEDULER_PRIORITY_QUEUE": QUEUES[args.queue],
            # Broad-crawl recommendations: breadth-first, no retries or redirects to chase.
            "DEPTH_PRIORITY": 1,
            "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
            "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
            "REACTOR_THREADPOOL_MAXSIZE": 20,
            "COOKIES_ENABLED": False,
            "RETRY_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        }
    )
    process.crawl(WideSpider, seed=args.seed, report=args.report)
    process.start()


if __name__ == "__main__":
    main()
