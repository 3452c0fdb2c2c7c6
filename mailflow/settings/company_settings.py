"""`[company]`, `[network]` and `[kpi]`: who the company is, in a store several companies share and
in a network of companies, and what a hire costs it."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from mailflow.settings.section import Section


class Kpi(Section):
    agency_fee_yen: int = Field(1_000_000, ge=0)
    usual_cost_per_hire_yen: int = Field(800_000, ge=0)
    monthly_report_to: str = ""  # "" = no monthly mail


class Company(Section):
    # the company this process works for: its rows in a store several companies share
    # (PostgreSQL, row-level security); the one source of truth for the store's scoping
    id: str = "default"
    name: str = "株式会社サンプル"
    domains: list[str] = []

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _NETWORK_NAME.fullmatch(value):
            raise ValueError('a name of 1 to 64 letters, digits, ".", "_" or "-" (e.g. "acme")')
        return value


class Network(Section):
    """The network pool (the seeds' case D, `mailflow.network`): companies of one network that
    opted in publish their anonymised, consented candidates and see the others'."""

    id: str = ""  # the network's name, the same in every member's config
    company: str = ""  # this company's name in the network (others see it and name it in --to)
    publish: bool = False  # opt-in: without it the company publishes nothing and sees nothing
    dsn_env: str = "MAILFLOW_NETWORK_DSN"  # the network pool's connection string's variable

    @model_validator(mode="after")
    def _named(self) -> Network:
        if self.publish:
            for key in ("id", "company"):
                if not _NETWORK_NAME.fullmatch(getattr(self, key)):
                    raise ValueError(f"{key}: with publish = true, a name of 1 to 64 letters, "
                                     "digits, '.', '_' or '-' (e.g. \"client-a\")")
        return self


_NETWORK_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
