"""What a new user sees: where the service listens, warnings only when they apply, and
problem types that point nowhere they should not."""

from __future__ import annotations

import logging

import pytest

from service.app import listening_message
from tests.api.conftest import MakeServer, assert_problem


def test_listening_message_names_the_urls() -> None:
    assert listening_message("127.0.0.1", 8000) == (
        "listening on http://127.0.0.1:8000 (API http://127.0.0.1:8000/v1, "
        "docs http://127.0.0.1:8000/docs, dashboard http://127.0.0.1:8000/)"
    )
    assert listening_message("::1", 8000).startswith("listening on http://[::1]:8000 ")
    wildcard = listening_message("0.0.0.0", 8080)
    assert wildcard.startswith("listening on http://0.0.0.0:8080 (all interfaces)")
    assert "docs http://127.0.0.1:8080/docs" in wildcard


async def test_startup_log_says_where_it_listens_and_no_webhook_warning(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = await make_server(webhook_secret="")
    port = server.settings.port
    messages = [record.getMessage() for record in caplog.records]
    assert f"listening on http://127.0.0.1:{port} (API http://127.0.0.1:{port}/v1, " in (
        "\n".join(messages)
    )
    assert f"docs http://127.0.0.1:{port}/docs" in "\n".join(messages)
    # No webhook was used: nothing to warn about.
    assert not any("SCRAPER_WEBHOOK_SECRET" in message for message in messages)


async def test_problem_types_are_about_blank(make_server: MakeServer) -> None:
    server = await make_server(role="web")
    for response in (
        await server.client.get("/v1/jobs/nope"),
        await server.client.post("/v1/jobs", json={"urls": []}),
        await server.client.get("/nowhere"),
    ):
        body = assert_problem(response, response.status_code)
        assert body["type"] == "about:blank", body


async def test_the_webhook_secret_warning_comes_with_the_first_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from service.settings import Settings
    from service.webhooks.delivery import Sender

    caplog.set_level(logging.WARNING)
    sender = Sender(Settings(webhook_secret=""))
    assert not caplog.records
    for _ in range(2):
        await sender.post("http://example.invalid/", "job.completed", "e", "j", b"{}", 1)
    warnings = [r for r in caplog.records if "SCRAPER_WEBHOOK_SECRET" in r.getMessage()]
    assert len(warnings) == 1
    signed = Sender(Settings(webhook_secret="s"))
    caplog.clear()
    await signed.post("http://example.invalid/", "job.completed", "e", "j", b"{}", 1)
    assert not caplog.records
