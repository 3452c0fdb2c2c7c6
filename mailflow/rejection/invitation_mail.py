"""A short, separate Career Relay invitation: for a rejection HR sent without mailflow."""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from mailflow.mail.rewrite.render import InvitationContext, render_invitation
from mailflow.rejection.rewriting import HEADER, RewriteSettings


def invitation_mail(settings: RewriteSettings, context: InvitationContext, sender: str,
                    to: str, rejection_id: str, in_reply_to: str | None, when: datetime,
                    message_id: str) -> bytes:
    invitation = render_invitation(settings.templates_dir, context)
    message = EmailMessage()
    message["From"] = Address(settings.company_name, addr_spec=sender)
    message["To"] = to
    message["Subject"] = f"キャリアリレー制度のご案内（{settings.company_name}）"
    message["Date"] = format_datetime(when)
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message[HEADER] = rejection_id
    greeting = f"{context.candidate_name} 様\n\n" if context.candidate_name else ""
    message.set_content(greeting + invitation.text + "\n", charset="utf-8")
    message.add_alternative(f"<html><body>{invitation.html}</body></html>\n", subtype="html",
                            charset="utf-8")
    return message.as_bytes()
