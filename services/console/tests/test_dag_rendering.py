"""The console's rendered DAG: one validation per DAG text, never a stale answer.

`RenderedDag` is what `GET /api/dag` answers from (routes/dag.py); these tests
drive it with the texts a pipeline sends. The end-to-end answer against a real
pipeline-server is in test_api.py.
"""

from __future__ import annotations

import json

import pytest

from console_server.errors import ConsoleError
from console_server.routes.dag import RenderedDag

FIRST = json.dumps(
    {
        "nodes": [
            {"id": "a", "type": "custom", "builtin": None},
            {"id": "b", "type": "custom", "builtin": None},
        ],
        "edges": [{"source": "a", "target": "b"}],
    }
)
SECOND = json.dumps({"nodes": [{"id": "only", "type": "builtin", "builtin": "X"}], "edges": []})


def test_a_dag_text_is_validated_once_and_its_body_reused() -> None:
    rendered = RenderedDag()
    body = rendered.body(FIRST)
    assert json.loads(body) == json.loads(FIRST)
    # The same text again: the very same bytes, not a new rendering.
    assert rendered.body(FIRST) is body


def test_another_text_is_answered_with_its_own_dag() -> None:
    rendered = RenderedDag()
    rendered.body(FIRST)
    # Two pipeline revisions behind one console during a rollout: each answer
    # is its own DAG, never the previous one.
    for source in (SECOND, FIRST, SECOND):
        assert json.loads(rendered.body(source)) == json.loads(source)


@pytest.mark.parametrize(
    "source",
    [
        "not json",
        json.dumps({"nodes": "no", "edges": []}),
        json.dumps({"edges": []}),
    ],
)
def test_a_text_that_is_not_reactflow_is_a_502_and_keeps_the_last_good_one(source: str) -> None:
    rendered = RenderedDag()
    good = rendered.body(FIRST)
    with pytest.raises(ConsoleError) as raised:
        rendered.body(source)
    assert raised.value.status_code == 502
    assert raised.value.code == "pipeline_bad_response"
    assert rendered.body(FIRST) is good
