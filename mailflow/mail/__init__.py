"""The mail itself (pure): bytes decoded correctly, parsed into a `Mail` view, and rewritten
byte-carefully. `charset/` (Japanese-correct decoding, the JIS-to-CP932 bridge), `parse/` (bytes →
`Mail`), `rewrite/` (the splice of an invitation into the text leaves, quote and signature
detection, `#mailflow` marker lines), `people` (names, addresses and phone numbers normalised).
May use: `mailflow.errors` only. No I/O of any kind.
"""
