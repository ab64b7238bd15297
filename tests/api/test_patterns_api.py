"""include/exclude run on RE2: what it cannot express is a 422 naming the field."""

from __future__ import annotations

import pytest

from tests.api.conftest import SEED, assert_problem, post_json
from tests.conftest import TrawlServer

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize(
    ("field", "pattern", "says"),
    [
        ("include", r"(a)\1", "backreference"),
        ("exclude", r"foo(?=bar)", "lookahead"),
        ("exclude", r"(?<!x)y", "lookbehind"),
        ("include", r"(?!x)y", "lookahead"),
        ("include", "[", "invalid regular expression"),
    ],
)
async def test_what_re2_cannot_run_is_refused(
    module_api: TrawlServer, field: str, pattern: str, says: str
) -> None:
    response = await post_json(module_api, {"urls": [SEED], field: ["^ok$", pattern]})
    body = assert_problem(response, 422, f"{field}[1]")
    assert says in body["errors"][0]["message"]


async def test_a_catastrophic_python_pattern_is_fine_for_re2(module_api: TrawlServer) -> None:
    response = await post_json(module_api, {"urls": [SEED], "include": ["^http://h/(a+)+b"]})
    assert response.status_code == 202, response.text


async def test_patterns_and_selectors_are_bounded(module_api: TrawlServer) -> None:
    too_long = {"urls": [SEED], "include": ["a" * 1001]}
    assert_problem(await post_json(module_api, too_long), 422, "include[0]")
    too_many = {"urls": [SEED], "exclude": ["a"] * 101}
    assert_problem(await post_json(module_api, too_many), 422, "exclude")
    long_css = {"urls": [SEED], "selectors": {"x": "div " * 200}}
    assert_problem(await post_json(module_api, long_css), 422, "selectors.x")
