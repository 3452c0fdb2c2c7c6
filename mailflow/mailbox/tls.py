"""TLS to the mail servers, done right: certificates verified against the system's trust store,
or against an internal CA named by `ca_file`; host names checked; a failure in one plain line.

STARTTLS never falls back to plain text: a server that does not offer it is an error.
"""

from __future__ import annotations

import ssl
from pathlib import Path

# OpenSSL's verification codes (X509_V_ERR_*) and what they mean for an admin.
_EXPIRED = {10: "the server's certificate has expired", 9: "the server's certificate is not "
            "valid yet"}
_UNKNOWN_CA = frozenset({2, 18, 19, 20, 21})
_HOSTNAME = frozenset({62, 64})  # host name, IP address
# The same, as OpenSSL words them when only the text survives (aiosmtplib keeps no cause).
_WORDS = ((("hostname mismatch", "ip address mismatch"), _HOSTNAME), (("has expired",), {10}),
          (("local issuer", "self-signed", "self signed", "unknown ca"), _UNKNOWN_CA))


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """A verifying client context: the system store, or only ``ca_file`` when it is given."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ca_file {ca_file}: cannot be read as PEM certificates ({exc})") from exc


def tls_reason(exc: BaseException, host: str, ca_file: Path | None = None) -> str | None:
    """One line for a TLS failure, or None when ``exc`` is not one."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _verify_reason(exc.verify_code, exc.verify_message, host, ca_file)
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc.__class__.__name__}); is this a TLS port?"
    return None


def _verify_reason(code: int, message: str, host: str, ca_file: Path | None) -> str:
    if code in _HOSTNAME:
        return f"the server's certificate is not for {host} (host name mismatch)"
    if code in _EXPIRED:
        return _EXPIRED[code]
    if code in _UNKNOWN_CA:
        where = f"the CA in {ca_file}" if ca_file else ("the system's trusted CAs (set ca_file "
                                                         "for an internal CA)")
        return f"the server's certificate is not signed by {where} (unknown CA)"
    return f"the server's certificate was refused: {message}"


def smtp_reason(exc: BaseException, host: str, ca_file: Path | None = None) -> str:
    """One line for an SMTP failure: the TLS reason behind it when there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        reason = tls_reason(seen, host, ca_file)
        if reason:
            return f"TLS: {reason}"
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(exc).split())
    if "CERTIFICATE_VERIFY_FAILED" in text:
        lowered = text.lower()
        code = next((min(codes) for words, codes in _WORDS if any(w in lowered for w in words)), 0)
        return f"TLS: {_verify_reason(code, text, host, ca_file)}"
    if "STARTTLS" in text and "not supported" in text:
        return ("the server does not offer STARTTLS (security = \"starttls\"); mailflow does not "
                "fall back to plain text")
    return text
