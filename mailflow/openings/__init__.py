"""Openings and rediscovery (issue 20): positions from `rules/openings.toml` and `mailflow opening
add`, the pool ranked for each (`ranking.py`, pure; Japanese terms from `text.py`), HR's
shortlist and the `opening_matched` events (`desk.py`), and the weights learned from outcomes
(`learning.py`)."""
