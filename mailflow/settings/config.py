"""The configuration: one TOML file, validated at once, every problem positioned.

Secrets never stand in the file: it names environment variables (`*_env` keys) and
`Config.secret` reads them when they are needed.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, field_validator, model_validator

from mailflow.errors import MissingSecret, UsageError
from mailflow.settings import tomlpos
from mailflow.settings.company_settings import Company, Kpi, Network
from mailflow.settings.durations import DelayText
from mailflow.settings.privacy_settings import PURPOSES as PURPOSES  # re-exported
from mailflow.settings.privacy_settings import Privacy
from mailflow.settings.privacy_settings import Purpose as Purpose
from mailflow.settings.privacy_settings import Retention as Retention
from mailflow.settings.providers import preset
from mailflow.settings.section import Section
from mailflow.settings.validation import validate
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES

Security = Literal["tls", "starttls", "none"]
Auth = Literal["password", "oauth2"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _no_file(value: object) -> object:
    return None if value == "" else value


# A PEM file of CAs to trust instead of the system's store; "" (the default): the system's.
CaFile = Annotated[Path | None, BeforeValidator(_no_file)]
# A folder of rules or templates; "" (the default): the ones shipped in the package.
Folder = Annotated[Path | None, BeforeValidator(_no_file)]



class Mailbox(Section):
    host: str = "127.0.0.1"
    port: int = Field(993, ge=1, le=65535)
    security: Security = "tls"
    username: str = ""
    password_env: str = "MAILFLOW_IMAP_PASSWORD"
    address: str = ""
    inbox: str = "INBOX"
    drafts: str = "Drafts"
    sent: str = "Sent"
    trash: str = "Trash"
    timeout_seconds: float = Field(60, gt=0)
    idle_seconds: float = Field(540, gt=0, le=600)
    poll_seconds: float = Field(30, gt=0)
    silence_alarm_seconds: float = Field(1800, gt=0)
    reconnect_max_seconds: float = Field(300, gt=0)
    auth_retry_seconds: float = Field(300, gt=0)
    max_message_bytes: int = Field(25 * 1024 * 1024, gt=0)  # larger mail is quarantined unread
    fetch_batch_bytes: int = Field(16 * 1024 * 1024, gt=0)  # one FETCH brings at most this much
    provider_files_sent: bool = False
    trusted_authserv_ids: list[str] = []
    ca_file: CaFile = None
    provider: Literal["custom", "google", "microsoft"] = "custom"
    auth: Auth = "password"
    client_id_env: str = ""
    client_secret_env: str = ""
    refresh_token_env: str = ""
    token_file: CaFile = None
    token_url: str = ""
    tenant: str = "common"
    scopes: list[str] = []

    @model_validator(mode="after")
    def _provider_defaults(self) -> Mailbox:
        """With OAuth, a provider's preset fills the host, port, token URL and scopes the file
        leaves out (settings/providers.py); password logins are left as they are."""
        found = preset(self.provider)
        if self.auth != "oauth2":
            return self
        if found is None:
            if not self.token_url:
                raise ValueError('auth = "oauth2" with provider = "custom" needs token_url')
            return self
        given = self.model_fields_set
        defaults = {"host": found.imap[0], "port": found.imap[1], "security": "tls",
                    "token_url": found.token_url.replace("{tenant}", self.tenant),
                    "scopes": list(found.scopes)}
        for key, value in defaults.items():
            if key not in given:
                object.__setattr__(self, key, value)
        return self

    @model_validator(mode="after")
    def _oauth_credentials_named(self) -> Mailbox:
        if self.auth == "oauth2" and self.token_file is None and not (
                self.client_id_env and self.refresh_token_env):
            raise ValueError('auth = "oauth2" needs token_file, or client_id_env and '
                             "refresh_token_env")
        return self

    @model_validator(mode="after")
    def _plain_on_loopback_only(self) -> Mailbox:
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(f"security = \"none\" sends the password in clear: only for a "
                             f"server on this machine, not {self.host!r}; use tls or starttls")
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Smtp(Section):
    host: str = "127.0.0.1"
    port: int = Field(587, ge=1, le=65535)
    security: Security = "starttls"
    from_: str = Field("", alias="from")
    ca_file: CaFile = None
    username: str = ""
    password_env: str = ""
    auth: Auth = "password"
    timeout_seconds: float = Field(30, gt=0)


class Store(Section):
    path: Path = Path("data")
    engine: Literal["sqlite", "tinydb", "postgresql"] = "sqlite"
    dsn_env: str = "MAILFLOW_STORE_DSN"  # engine "postgresql": the connection string's variable
    keep_attachments: bool = True


class Web(Section):
    listen: str = "127.0.0.1:8025"
    public_url: str = "http://127.0.0.1:8025"
    admin_token_env: str = "MAILFLOW_ADMIN_TOKEN"
    max_body_bytes: int = Field(65536, gt=0)
    public_rate_per_second: float = Field(2.0, gt=0)
    public_burst: int = Field(30, ge=1)
    scanner_networks: list[str] = []
    trusted_proxies: list[str] = []
    header_timeout_seconds: float = Field(10, gt=0, le=3600)
    body_timeout_seconds: float = Field(30, gt=0, le=3600)
    max_connections: int = Field(1024, ge=1)  # capped by the open-file limit (web/acceptor.py)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:8025")
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("expected an http(s):// URL")
        return value.rstrip("/")


class CareerRelay(Section):
    register_url: str = "https://career-relay.example.jp/register"
    company_id: str = "demo-company"
    secret_env: str = "MAILFLOW_RELAY_SECRET"
    ledger_key_env: str = "MAILFLOW_LEDGER_KEY"
    registrations_per_free_slot: int = Field(10, ge=1)
    slot_value_yen: int = Field(1_000_000, ge=0)
    handover_url: str = ""  # "" (the default): no profile is handed over, only the referral code
    credit_on: Literal["registered", "introduced", "hired"] = "registered"

    @field_validator("register_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("expected an http(s):// URL")
        return value

    @field_validator("handover_url")
    @classmethod
    def _handover_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError('expected an http(s):// URL, or "" for no hand-over')
        return value


class Rejection(Section):
    mode: Literal["send", "rewrite", "both"] = "rewrite"
    outbox_folder: str = "Outbox"
    quiet_seconds: float = Field(120, ge=0)
    not_rejection: Literal["send", "mark"] = "mark"
    invite_after_direct_send: bool = True


class Rules(Section):
    dir: Folder = None  # "" or none: the rules shipped in the package
    templates_dir: Folder = None
    timezone: str = "Asia/Tokyo"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone; expected an IANA name such as Asia/Tokyo") from exc
        return value


class Followups(Section):
    tick_seconds: int = Field(30, ge=1)
    batch: int = Field(500, ge=1)
    days: list[Weekday] = Field(["mon", "tue", "wed", "thu", "fri"], min_length=1)
    start: str = "10:00"
    end: str = "18:00"
    holidays: str = "JP"
    per_hour: int = Field(60, ge=1)
    per_candidate: DelayText = "7d"
    apply_url: str = ""

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        hour, sep, minute = value.partition(":")
        if not (sep and hour.isdigit() and minute.isdigit() and len(minute) == 2
                and (int(hour), int(minute)) <= (24, 0) and int(minute) < 60):
            raise ValueError("expected HH:MM, e.g. 10:00")
        return value

    @field_validator("holidays")
    @classmethod
    def _country(cls, value: str) -> str:
        # the registry's codes: `list_supported_countries()` imports every country (~100 ms)
        from holidays.registry import EntityLoader

        if value and value not in set(EntityLoader.get_country_codes()):
            raise ValueError("unknown country code; expected e.g. JP, or \"\" for none")
        return value

    @model_validator(mode="after")
    def _window(self) -> Followups:
        if tuple(map(int, self.start.split(":"))) >= tuple(map(int, self.end.split(":"))):
            raise ValueError("start must be before end")
        return self


class Referral(Section):
    """The referral exit: a candidate's personal link (`/f/{token}`, the `referral_url` template
    variable) leads to the company's application page with their referral code appended."""

    apply_url: str = ""  # "" (the default): no referral links
    code_param: str = Field("ref", pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,31}$")

    @field_validator("apply_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError('expected an http(s):// URL, or "" for no referral links')
        if "#" in value:
            raise ValueError("expected a URL without a #fragment (the code goes in the query)")
        return value


class Newsletter(Section):
    """Regular mailings whose posts come from a company feed (RSS/Atom): how the daemon fetches
    it."""

    feed_refresh: DelayText = "1h"  # how old the cached copy of a feed may grow
    feed_timeout_seconds: float = Field(10, gt=0, le=120)
    feed_max_bytes: int = Field(2_000_000, ge=1024, le=50_000_000)


class Config(Section):
    mailbox: Mailbox = Mailbox()
    smtp: Smtp = Smtp()
    store: Store = Store()
    web: Web = Web()
    career_relay: CareerRelay = CareerRelay()
    rejection: Rejection = Rejection()
    privacy: Privacy = Privacy()
    rules: Rules = Rules()
    followups: Followups = Followups()
    company: Company = Company()
    kpi: Kpi = Kpi()
    referral: Referral = Referral()
    newsletter: Newsletter = Newsletter()
    network: Network = Network()
    source: Path | None = None

    @model_validator(mode="after")
    def _network_purpose(self) -> Config:
        """Publishing to the network pool asks for the purpose `network` (the candidates'
        grants of it are who is published)."""
        if self.network.publish and "network" not in self.privacy.purposes:
            raise ValueError("[network] publish = true needs the purpose \"network\" in "
                             "[privacy.purposes] (who granted it is who is published)")
        return self

    @model_validator(mode="after")
    def _smtp_oauth(self) -> Config:
        """`[smtp] auth = "oauth2"` logs in with the mailbox's OAuth client and token (one
        account, one grant); the provider's preset fills the SMTP host and port the file leaves
        out."""
        if self.smtp.auth != "oauth2":
            return self
        if self.mailbox.auth != "oauth2":
            raise ValueError('[smtp] auth = "oauth2" needs [mailbox] auth = "oauth2" (its '
                             "client and token are used)")
        found = preset(self.mailbox.provider)
        given = self.smtp.model_fields_set
        if found is not None:
            for key, value in (("host", found.smtp[0]), ("port", found.smtp[1]),
                               ("security", "starttls")):
                if key not in given:
                    object.__setattr__(self.smtp, key, value)
        if not self.smtp.username:
            object.__setattr__(self.smtp, "username", self.mailbox.username)
        return self

    def resolve(self, relative: Path) -> Path:
        """A path from the config, relative to the config file's folder."""
        if relative.is_absolute() or self.source is None:
            return relative
        return self.source.parent / relative

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.store.path)

    @property
    def rules_dir(self) -> Path:
        """The folder the config names, else the rules shipped in the package."""
        return self.resolve(self.rules.dir) if self.rules.dir else SHIPPED_RULES

    @property
    def templates_dir(self) -> Path:
        shipped = SHIPPED_TEMPLATES
        return self.resolve(self.rules.templates_dir) if self.rules.templates_dir else shipped

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.rules.timezone)

    def imap_password(self) -> str:
        """The IMAP password; "" with `auth = "oauth2"` (an access token logs in instead)."""
        return "" if self.mailbox.auth == "oauth2" else self.secret("mailbox.password_env")

    def secret(self, env_key: str) -> str:
        """Read the secret named by a `section.*_env` key, e.g. `secret("mailbox.password_env")`."""
        section, _, key = env_key.partition(".")
        variable = getattr(getattr(self, section), key)
        value = os.environ.get(variable, "") if variable else ""
        if not value:
            raise MissingSecret(
                f"environment variable {variable or '(none)'} is not set ({env_key} names it)"
            )
        return value


def load_config(path: Path) -> Config:
    """Load and validate a config file; raises ProblemsError listing every problem."""
    data, positions = tomlpos.load(path)
    data.pop("source", None)
    config = validate(Config, data, positions, path)
    config = config.model_copy(update={"source": path.resolve()})
    config = config.model_copy(update={  # a CA file named relative to the config file's folder
        name: section.model_copy(update={"ca_file": config.resolve(section.ca_file)})
        for name, section in (("mailbox", config.mailbox), ("smtp", config.smtp))
        if section.ca_file is not None})
    if config.mailbox.token_file is not None:
        config = config.model_copy(update={"mailbox": config.mailbox.model_copy(
            update={"token_file": config.resolve(config.mailbox.token_file)})})
    return config


def find_config(explicit: Path | None) -> Path:
    """`-c PATH`, else $MAILFLOW_CONFIG, else ./config.toml."""
    if explicit is not None:
        candidate = explicit
    elif os.environ.get("MAILFLOW_CONFIG"):
        candidate = Path(os.environ["MAILFLOW_CONFIG"])
    else:
        candidate = Path("config.toml")
    if not candidate.is_file():
        raise UsageError(
            f"config file {candidate} not found (give -c PATH, set MAILFLOW_CONFIG, "
            "or start one with `mailflow init DIR`)"
        )
    return candidate
