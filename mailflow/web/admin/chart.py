"""The overview's chart over time, laid out here and drawn by the template as inline SVG (no
JavaScript, nothing fetched): grouped bars per month, one colour per series, the report's
`by_month` rows as they are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SERIES = ("applications", "rejections", "invitations", "registrations", "hires")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 240, 40, 28, 12


@dataclass(frozen=True)
class Bar:
    series: int
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    months: list[tuple[float, str]]  # (x of the label's centre, "2026-04")
    ticks: list[tuple[float, int]]  # (y, value) on the left axis
    series: Sequence[str]
    baseline: float


def layout(rows: Sequence[Mapping[str, Any]], series: Sequence[str] = SERIES) -> Chart:
    top = max([int(r.get(s) or 0) for r in rows for s in series] + [1])
    plot_h = HEIGHT - BOTTOM - TOP
    group = (WIDTH - LEFT) / max(len(rows), 1)
    bar_w = group * 0.8 / len(series)
    bars, months = [], []
    for i, row in enumerate(rows):
        x0 = LEFT + i * group + group * 0.1
        for j, name in enumerate(series):
            value = int(row.get(name) or 0)
            h = plot_h * value / top
            bars.append(Bar(j, round(x0 + j * bar_w, 1), round(TOP + plot_h - h, 1),
                            round(bar_w, 1), round(h, 1), value, f"{row.get('month')} {name}"))
        if i % -(-len(rows) // 12) == 0:  # at most 12 labels
            months.append((round(LEFT + i * group + group / 2, 1), str(row.get("month", ""))))
    ticks = [(round(TOP + plot_h - plot_h * v / top, 1), v) for v in sorted({0, top // 2, top})]
    return Chart(WIDTH, HEIGHT, bars, months, ticks, series, TOP + plot_h)
