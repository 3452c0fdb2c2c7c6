"""`candidates --json` streams the pool: the same document as one `json.dumps`, item by item."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailflow.cli.options import print_json_array

CASES: list[list[Any]] = [
    [],
    [{"id": "c1", "name": "山田 太郎", "emails": ["a@example.jp"], "tags": []}],
    [{"a": 1}, {"b": {"c": [], "d": {}}}, 3, "テキスト\n二行", None, [1, [2]]],
]


@pytest.mark.parametrize("items", CASES, ids=["empty", "one", "mixed"])
def test_streamed_array_is_the_whole_documents_text(items: list[Any],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert print_json_array(iter(items)) == len(items)
    out = capsys.readouterr().out
    assert out == json.dumps(items, ensure_ascii=False, indent=2) + "\n"
    assert json.loads(out) == items
