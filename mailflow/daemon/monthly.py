"""The daemon's monthly KPI mail: every ten minutes, whether a month is due (kpi/monthly.py);
its report queued in the outbox and the month recorded in one transaction, so a month is mailed
once however often the daemon restarts."""

from __future__ import annotations

import asyncio
import logging
import threading
from email.message import EmailMessage
from email.utils import format_datetime

from mailflow.clock import Clock
from mailflow.kpi.monthly import due_month, mail_text
from mailflow.kpi.report import compute
from mailflow.outgoing.outbox import Outbox
from mailflow.settings.config import Config
from mailflow.store.base import Store

log = logging.getLogger("mailflow.kpi")
SENT = "kpi_monthly_report"  # settings: {"month": "YYYY-MM"} of the last report queued
EVERY_SECONDS = 600


class MonthlyReport:
    def __init__(self, store: Store, clock: Clock, config: Config, outbox: Outbox,
                 lane: threading.RLock) -> None:
        self.store, self.clock, self.config, self.outbox, self.lane = (
            store, clock, config, outbox, lane)

    def send_if_due(self) -> str | None:
        """Queue the report of the month that is due; its "YYYY-MM", or None."""
        to = self.config.kpi.monthly_report_to
        if not to:
            return None
        with self.lane, self.store.transaction():
            last = (self.store.get("settings", SENT) or {}).get("month")
            due = due_month(self.clock.now(), self.config.zone, last)
            if due is None:
                return None
            start, end = due
            report = compute(self.store, self.config, start, end, now=self.clock.now())
            subject, body = mail_text(report, self.config.company.name, start)
            message = EmailMessage()
            message["From"] = self.outbox.sender
            message["To"] = to
            message["Subject"] = subject
            message["Date"] = format_datetime(self.clock.now())
            message["Message-ID"] = f"<kpi-report-{start:%Y-%m}@{self.outbox.domain}>"
            message["Auto-Submitted"] = "auto-generated"  # never taken for an application
            message.set_content(body, charset="utf-8")
            self.outbox.queue(message.as_bytes(), to=[to], purpose="kpi-report")
            self.store.put("settings", SENT, {"month": f"{start:%Y-%m}"})
        log.info("monthly KPI report for %s queued", f"{start:%Y-%m}")
        return f"{start:%Y-%m}"

    async def keep_sending(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.send_if_due)
            except Exception:
                log.exception("monthly KPI report failed; tried again in ten minutes")
            await asyncio.sleep(EVERY_SECONDS)
