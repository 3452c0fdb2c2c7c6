"""Pure mail parsing: raw bytes to a read-only ``Mail`` view, Japanese-correct."""

from mailflow.parse.mail import body_hash, parse_mail
from mailflow.parse.model import Address, Attachment, BodyPart, Mail

__all__ = ["Address", "Attachment", "BodyPart", "Mail", "body_hash", "parse_mail"]
