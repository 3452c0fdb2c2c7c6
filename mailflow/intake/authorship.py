"""Did the company write this mail? (pure) — the question before a `#mailflow` line may count.

A `From:` header proves nothing: anyone can write the recruiting address into it. A mail counts
as the company's when it was found in a folder only the company writes (Sent, Drafts, the outbox
folder), or, in INBOX, when it is From the company and the receiving server — one of the
configured ``trusted_authserv_ids``, the first word of its `Authentication-Results` header field
(RFC 8601) — says DMARC passed for the company's domain (``header.from``) or DKIM passed with a
signature of the company's domain (``header.d``, or the domain of ``header.i``). Results from any
other server id are ignored: a sender can write such a header field too. Domains are the
recruiting address's domain and `[company] domains` (a subdomain counts).

Microsoft 365 (Exchange Online) writes its field without an authserv-id (`spf=pass …;
dkim=pass …`), against RFC 8601. The trusted id ``microsoft-365`` stands for it: only the topmost
`Authentication-Results` field counts, and only when it has no authserv-id — Exchange prepends
its own above anything the sender wrote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import authres

from mailflow.mail.parse import Mail
from mailflow.mail.people import normalise_email

OWN_FOLDERS = frozenset({"sent", "drafts", "outbox"})
MICROSOFT = "microsoft-365"


@dataclass(frozen=True)
class Authorship:
    company: bool
    why: str


def _ours(domain: str, domains: frozenset[str]) -> bool:
    domain = domain.strip().lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in domains)


def _passes(value: str, trusted: frozenset[str], domains: frozenset[str]) -> str | None:
    """The method that passed for one of ``domains`` in this header field value, if any."""
    try:
        parsed = authres.AuthenticationResultsHeader.parse_value(value)
    except Exception:  # a malformed field says nothing
        return None
    if str(parsed.authserv_id).lower() not in trusted:
        return None
    for result in parsed.results:
        if str(result.result).lower() != "pass":
            continue
        method = str(result.method).lower()
        for prop in result.properties:
            name, found = f"{prop.type}.{prop.name}".lower(), str(prop.value)
            if method == "dmarc" and name == "header.from" and _ours(found, domains):
                return f"dmarc=pass header.from={found}"
            if method == "dkim" and name in ("header.d", "header.i") and _ours(
                    found.rpartition("@")[2], domains):
                return f"dkim=pass {name}={found}"
    return None


def _without_id(value: str) -> bool:
    """True for a field that starts with ``method=result`` (no authserv-id before it)."""
    first = value.split(";", 1)[0]
    return "=" in first.split("(", 1)[0]


def company_wrote(mail: Mail, role: str, address: str, domains: Iterable[str],
                  trusted_authserv_ids: Iterable[str]) -> Authorship:
    """Whether ``mail``, found in the folder playing ``role``, was written by the company."""
    if role in OWN_FOLDERS:
        return Authorship(True, f"found in {role}, a folder only the company writes")
    own = frozenset(d.lower().lstrip("@").rstrip(".") for d in [
        normalise_email(address).rpartition("@")[2], *domains] if d)
    sender = normalise_email(mail.from_[0].email) if mail.from_ else ""
    if not sender or not _ours(sender.rpartition("@")[2], own):
        return Authorship(False, "not From the company")
    trusted = frozenset(t.lower() for t in trusted_authserv_ids)
    if not trusted:
        return Authorship(False, "From the company, but no trusted_authserv_ids are configured "
                                 "to confirm it")
    fields = mail.header_all("Authentication-Results")
    if MICROSOFT in trusted and fields and _without_id(fields[0]):
        fields = [f"{MICROSOFT}; {fields[0]}", *fields[1:]]
    for value in fields:
        passed = _passes(value, trusted, own)
        if passed:
            return Authorship(True, f"From the company, confirmed by the receiving server "
                                    f"({passed})")
    return Authorship(False, "From the company, but no Authentication-Results from a trusted "
                             "server says DMARC or DKIM passed for its domain")
