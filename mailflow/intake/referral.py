"""The referral code an application quotes (pure): who recommended the applicant.

The company's application page receives the code from the referral link (`/f/{token}` → the
page with `ref=CODE` in its query) and passes it on in the application mail, in one of two ways
mailflow recognises, in the subject or the body (text, or the text of the HTML part):

- a line `紹介コード: CODE` (also `紹介コード：CODE` with a full-width colon, or
  `Referral code: CODE`), or
- `ref=CODE` (the `[referral] code_param` name), as in the page's own URL copied into the mail.

Codes are 8 characters (`pool.referrals`), compared in upper case; the first that names a known
referrer counts. A code of the applicant themself does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mailflow.mail.parse import Mail

_LABELLED = re.compile(r"(?:紹介コード|referral\s*code)\s*[:：]\s*([A-Za-z0-9]{8})(?![A-Za-z0-9])",
                       re.IGNORECASE)


def quoted_codes(mail: Mail, param: str = "ref") -> Iterator[str]:
    """Every referral code the mail quotes, in the order found (labelled ones first)."""
    in_query = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(param)}=([A-Za-z0-9]{{8}})"
                          r"(?![A-Za-z0-9])")
    texts = (mail.subject, mail.text, mail.text_from_html)
    for pattern in (_LABELLED, in_query):
        for text in texts:
            for found in pattern.finditer(text or ""):
                yield found.group(1).upper()
