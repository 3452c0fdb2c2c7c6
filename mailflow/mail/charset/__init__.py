"""Japanese-correct decoding and encoding of mail text (pure, no I/O).

Python has no codec for the ISO-2022-JP variants that Windows (CP50220/CP50221) and phones send,
so ISO-2022-JP is decoded here: JIS X 0208 pairs decode with the standard table first (so that
what we decode, Python's ``iso2022_jp`` encodes back to the same bytes), and pairs outside it (NEC
row 13 such as ①, IBM extensions in rows 89-92) go through an arithmetic bridge to Shift_JIS bytes
decoded as CP932. Mail labelled Shift_JIS is decoded as CP932. Bytes that do not fit their label
are tried as UTF-8, CP932 and EUC-JP before any replacement character is used.

The modules, each one step: `labels` (what a charset label means as a Python codec), `strict`
(decoding that refuses instead of guessing), `jis` (ISO-2022-JP and the JIS-to-CP932 bridge),
`eucjp` (eucJP-ms through the same bridge), `sniff` (which charset mislabelled bytes are really
in), `decode` (bytes and a label to `Decoded` text), `encode` (text back to bytes that round-trip)
and `encoded_words` (RFC 2047 header words).
"""

from mailflow.mail.charset.decode import decode_text
from mailflow.mail.charset.decoded import Decoded
from mailflow.mail.charset.encode import encode_text
from mailflow.mail.charset.encoded_words import decode_header_words
from mailflow.mail.charset.jis import jis_to_sjis
from mailflow.mail.charset.labels import normalise_label

__all__ = [
    "Decoded",
    "decode_header_words",
    "decode_text",
    "encode_text",
    "jis_to_sjis",
    "normalise_label",
]
