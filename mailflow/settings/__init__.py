"""The configuration and the rule-file machinery: `config` (the TOML config, validated at once),
`secrets` (every secret the config needs, checked at once), `tomlpos` (line numbers of TOML
keys), `validation` (pydantic errors as `PATH:LINE: message`, the shared regular-expression
type), `durations` (`7d`, `2w`, `6mo`). May use: `errors`.
"""
