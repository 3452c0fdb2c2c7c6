"""One measured figure, as every benchmark reports it to the suite (`python -m benchmarks`).

A benchmark script prints its own table and, when the suite runs it, also appends its figures
as JSON lines to the file named by `$MAILFLOW_BENCH_OUT`. A figure is a value beside its baseline
measured in the same run, the ratio between them, and the target the ratio (or, where there is
no baseline, the value itself) must meet.
"""

from __future__ import annotations

import json
import operator
import os
from dataclasses import asdict, dataclass

OUT_ENV = "MAILFLOW_BENCH_OUT"
_COMPARE = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Figure:
    benchmark: str  # the script: "callbacks"
    what: str  # "durable callbacks/s, 50 in flight"
    value: float
    unit: str  # "req/s", "ms", "MB"
    baseline: str = ""  # what it is measured against, in the same run
    baseline_value: float | None = None
    ratio: float | None = None  # value against the baseline, as the target reads it
    target: float | None = None
    op: str = ">="  # the ratio (or the value, without a baseline) op target
    on: str = "ratio"  # "ratio" or "value"

    def met(self) -> bool | None:
        if self.target is None:
            return None
        measured = self.ratio if self.on == "ratio" else self.value
        return None if measured is None else bool(_COMPARE[self.op](measured, self.target))

    @property
    def key(self) -> tuple[str, str]:
        return self.benchmark, self.what


def emit(*figures: Figure) -> None:
    """Hand the figures to the suite, when it runs this script (else nothing)."""
    path = os.environ.get(OUT_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for figure in figures:
            out.write(json.dumps(asdict(figure), ensure_ascii=False) + "\n")


def read(path: str) -> list[Figure]:
    with open(path, encoding="utf-8") as lines:
        return [Figure(**json.loads(line)) for line in lines if line.strip()]
