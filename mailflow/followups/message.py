"""The follow-up mail itself (pure): plain text, the company as sender, an RFC 8058 one-click
unsubscribe header and a visible unsubscribe link, marked with `HEADER` (the rule's name).
"""

from __future__ import annotations

from datetime import datetime
from email.header import Header
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr

HEADER = "X-Mailflow-Followup"


def followup_mail(company: str, sender: str, to: str, subject: str, text: str,
                  unsubscribe_link: str, when: datetime, message_id: str, rule: str) -> bytes:
    """A plain-text follow-up with RFC 8058 one-click unsubscribe and a visible link (built
    with the compat32 API: about six times faster than EmailMessage's header parsing)."""
    if unsubscribe_link not in text:
        text += f"\n\n――――――――――\n今後このご案内が不要な場合は、こちらから配信を停止できます:\n" \
                f"{unsubscribe_link}"
    message = MIMEText(text + "\n", "plain", "utf-8")
    message["From"] = formataddr((company, sender), charset="utf-8") if company else sender
    message["To"] = to
    message["Subject"] = Header(subject, "utf-8", header_name="Subject").encode()
    message["Date"] = format_datetime(when)
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = f"<{unsubscribe_link}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message[HEADER] = rule
    return message.as_bytes()
