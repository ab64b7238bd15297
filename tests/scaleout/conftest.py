"""Scale-out fixtures: a fresh PostgreSQL database per test and a process cluster on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.scaleout.cluster import Cluster
from tests.store import pgdb

MakeCluster = Callable[..., Cluster]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty database (skips the test when no PostgreSQL is reachable)."""
    yield from pgdb.fresh_database("trawl_scaleout")


@pytest.fixture
def make_cluster(pg_url: str, tmp_path: Path) -> Iterator[MakeCluster]:
    """`make_cluster(**env)`: a Cluster on the test's database; every child ends at teardown."""
    clusters: list[Cluster] = []

    def make(**env: str) -> Cluster:
        cluster = Cluster(pg_url, tmp_path, env)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.close(grace=10)
