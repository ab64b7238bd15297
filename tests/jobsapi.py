"""The public job API as tests call it, for any client pointed at a Trawl server."""

from __future__ import annotations

from typing import Any

import httpx


class JobsApi:
    """Submit, poll, cancel and read results; subclasses set `client`."""

    client: httpx.AsyncClient

    async def submit(self, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        response = await self.client.post("/v1/jobs", json=body, **kwargs)
        assert response.status_code == 202, response.text
        job: dict[str, Any] = response.json()
        return job

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    async def cancel(self, job_id: str) -> dict[str, Any]:
        response = await self.client.delete(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    async def results(self, job_id: str, **params: Any) -> list[dict[str, Any]]:
        """Every result of a job, following cursors."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = dict(params, limit=params.get("limit", 1000))
            if cursor:
                query["cursor"] = cursor
            response = await self.client.get(f"/v1/jobs/{job_id}/results", params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            # A running job's cursor stays set (results can still come): stop at its end.
            if not cursor or not page["items"]:
                return items
