"""What mailflow ships: the default rules and templates (package data, found through
`importlib.resources`), used when a config names no folder of its own, and copied out by
`mailflow init` for a company to edit."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SHIPPED = Path(str(files(__name__)))
SHIPPED_RULES = SHIPPED / "rules"
SHIPPED_TEMPLATES = SHIPPED / "templates"
