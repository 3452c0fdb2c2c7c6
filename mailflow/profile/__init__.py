"""A candidate's profile: skills, qualifications, career (職歴) and desired role (希望職種), read
from application mails and résumés against `rules/skills.toml`, each value kept with where it
came from (`Provenance`), and HR's corrections, which win.

`dictionary` loads the rule file, `extract` reads text (pure), `documents` turns a résumé's
bytes into text (PDF, DOCX, XLSX, plain text; bounded and failure-safe), `provenance` merges
what was found into the record, `corrections` carries out HR's `candidate set` and `#mailflow
skills=` lines, and `gaps` is `pool check`.
"""
