"""`[privacy]`: the purposes of use the company notifies (APPI 法17, 21) and how long data is
kept (法22)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from mailflow.errors import UsageError
from mailflow.settings.durations import DelayText
from mailflow.settings.section import Section


class Purpose(Section):
    """One purpose of use the company notifies applicants of (APPI 法17, 21), as the candidate
    reads it on the consent page."""

    ja: str
    en: str


PURPOSES = {
    "selection": Purpose(ja="ご応募いただいた職種の選考",
                         en="selection for the position applied for"),
    "talent_pool": Purpose(ja="今後の採用でご連絡するための人材データベースへの登録",
                           en="keeping your profile for future openings"),
    "rescout": Purpose(ja="新しいポジションが開いたときの再度のご連絡",
                       en="contacting you again when a new position opens"),
    "career_relay": Purpose(ja="Career Relay(提携する人材紹介会社)へのご紹介",
                            en="introducing you to partner agencies through Career Relay"),
    "newsletter": Purpose(ja="採用情報・イベントのお知らせ", en="news of openings and events"),
    "network": Purpose(ja="提携企業ネットワーク内での、氏名・連絡先を除いたプロフィールの共有",
                       en="sharing your profile, without name or contacts, within our partner "
                          "companies' network"),
}


class Retention(Section):
    """How long data is kept (APPI 法22: erased without delay once no longer needed), counted
    from the candidate's last activity; applied daily by the daemon and by `mailflow purge`."""

    rejected: DelayText = "12mo"  # rejected candidates without `talent_pool` consent
    candidates: DelayText = "3y"  # everyone else
    attachments: DelayText = "6mo"  # résumés and other files, after they arrived
    quarantine: DelayText = "30d"  # quarantined mail and callbacks, after they were quarantined
    outbox: DelayText = "30d"  # bodies of sent (or given up) outgoing mail, after sending


class Privacy(Section):
    purposes: dict[str, Purpose] = PURPOSES
    notified_purposes: list[str] = ["selection", "talent_pool"]
    retention: Retention = Retention()
    erase_mailbox: Literal["leave", "move", "delete"] = "leave"
    erase_folder: str = "Erased"

    @model_validator(mode="after")
    def _notified_are_declared(self) -> Privacy:
        unknown = [p for p in self.notified_purposes if p not in self.purposes]
        if unknown:
            raise ValueError(f"notified_purposes: unknown purpose {unknown[0]!r}; known: "
                             f"{', '.join(self.purposes)}")
        return self

    def check_purpose(self, purpose: str) -> str:
        """`purpose` if the config declares it; else a UsageError listing the known ones."""
        if purpose not in self.purposes:
            raise UsageError(f"unknown purpose {purpose!r}; known: {', '.join(self.purposes)}")
        return purpose
