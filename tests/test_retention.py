"""Issue 18: what is past retention ([privacy.retention]), pure, on a frozen moment."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from mailflow.pool.records import Candidate
from mailflow.pool.retention import (
    expired_attachments,
    expired_candidate,
    expired_outbox,
    expired_quarantine,
    last_activity,
)
from mailflow.pool.talent import new_candidate
from mailflow.settings.config import Retention

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo
POLICY = Retention()  # rejected 12mo, candidates 3y, attachments 6mo, quarantine/outbox 30d


def _candidate(status: str, last: str, **extra: object) -> Candidate:
    c = new_candidate("c1", "2020-01-01T00:00:00+00:00")
    c.update({"status": status, "updated_at": last, **extra})  # type: ignore[typeddict-item]
    return c


def test_a_rejected_candidate_goes_12_months_after_the_last_activity_on_the_local_calendar(
) -> None:
    # 2025-12-01 09:00 in Tokyo: twelve months later is 2026-12-01 09:00 JST, before NOW
    gone = expired_candidate(_candidate("rejected", "2025-12-01T00:00:00+00:00"), POLICY,
                             ["selection"], NOW, TOKYO)
    assert gone is not None and gone.what == "candidate" and "12mo" in gone.why
    kept = expired_candidate(_candidate("rejected", "2025-12-01T04:00:00+00:00"), POLICY,
                             ["selection"], NOW, TOKYO)
    assert kept is None  # 13:00 JST a year ago: an hour to go


def test_talent_pool_consent_keeps_a_rejected_candidate_to_the_longer_period() -> None:
    last = "2025-06-01T00:00:00+00:00"
    assert expired_candidate(_candidate("rejected", last), POLICY, [], NOW, TOKYO)
    granted = _candidate("rejected", last, consents={"talent_pool": {
        "state": "granted", "at": "2024-01-01T00:00:00+00:00", "how": "consent page"}})
    assert expired_candidate(granted, POLICY, [], NOW, TOKYO) is None
    # notified purposes hold too, unless withdrawn
    assert expired_candidate(_candidate("rejected", last), POLICY, ["talent_pool"], NOW,
                             TOKYO) is None
    assert expired_candidate(_candidate("applied", "2023-11-30T00:00:00+00:00"), POLICY, [],
                             NOW, TOKYO) is not None


def test_the_last_activity_is_the_latest_of_record_applications_stages_and_consents() -> None:
    c = _candidate("rejected", "2024-01-01T00:00:00+00:00", stages=[
        {"stage": "一次面接", "at": "2026-03-01T00:00:00+00:00"}])
    assert last_activity(c) == "2026-03-01T00:00:00+00:00"
    assert expired_candidate(c, POLICY, [], NOW, TOKYO) is None


def test_attachments_quarantine_and_sent_bodies_have_their_own_periods() -> None:
    c = _candidate("applied", "2026-11-01T00:00:00+00:00", documents=[
        {"sha256": "a" * 64, "filename": "履歴書.pdf", "content_type": "application/pdf",
         "size": 10, "message_id": None, "received_at": "2026-05-31T00:00:00+00:00",
         "stored": True},
        {"sha256": "b" * 64, "filename": "職務経歴書.pdf", "content_type": "application/pdf",
         "size": 10, "message_id": None, "received_at": "2026-06-02T00:00:00+00:00",
         "stored": True}])
    assert [e.key for e in expired_attachments(c, POLICY, NOW, TOKYO)] == ["a" * 64]
    old = {"key": "inbox:1:2", "state": "quarantined", "updated_at": "2026-10-31T00:00:00Z"}
    assert expired_quarantine(old, POLICY, NOW, TOKYO) is not None
    assert expired_quarantine({**old, "updated_at": "2026-11-15T00:00:00Z"}, POLICY, NOW,
                              TOKYO) is None
    sent = {"id": "o1", "state": "sent", "sent_at": "2026-10-01T00:00:00Z", "raw": "eA==",
            "candidate_id": "c1"}
    assert expired_outbox(sent, POLICY, NOW, TOKYO) is not None
    assert expired_outbox({**sent, "state": "queued"}, POLICY, NOW, TOKYO) is None
    assert expired_outbox({**sent, "raw": ""}, POLICY, NOW, TOKYO) is None  # already gone
