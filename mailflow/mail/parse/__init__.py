"""Pure mail parsing: raw bytes to a read-only ``Mail`` view, Japanese-correct."""

from mailflow.mail.parse.mail import body_hash, parse_mail
from mailflow.mail.parse.model import Address, Attachment, BodyPart, Mail

__all__ = ["Address", "Attachment", "BodyPart", "Mail", "body_hash", "parse_mail"]
