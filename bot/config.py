"""Settings from environment variables and an optional TOML file, validated once into a frozen dataclass.

Precedence: environment variable > TOML file (`HELPDESK_CONFIG`) > default. Every feature reads its
settings from here; nothing else looks at the environment.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it (in English, for operators)."""


class StrList(tuple):
    """A list setting: a TOML array, or a comma-separated string (env vars)."""

    def __new__(cls, raw: Any = ()) -> "StrList":
        if isinstance(raw, str):
            raw = raw.split(",")
        return super().__new__(cls, (str(item).strip() for item in raw if str(item).strip()))


class UrlList(tuple):
    """A list of URLs: a TOML array, or one string (env vars) with the URLs separated by commas or blanks.

    Only a comma or blank followed by `scheme://` separates, since LDAP URLs have commas of their own
    (`ldap://host/cn=CRL1,ou=CRL,o=Government of Korea,c=KR`).
    """

    def __new__(cls, raw: Any = ()) -> "UrlList":
        if isinstance(raw, str):
            raw = re.split(r"[,\s]+(?=[A-Za-z][A-Za-z0-9+.\-]*://)", raw.strip())
        return super().__new__(cls, (str(item).strip().strip(",") for item in raw if str(item).strip().strip(",")))


@dataclass(frozen=True)
class MatchingSettings:
    """Thresholds of the answer / clarify / fallback decision (chosen on the dev set)."""

    answer_threshold: float = 38.0  # answer at once from this score (0-100) ...
    clarify_threshold: float = 20.0  # ... "did you mean" from this score; below: fallback
    close_ratio: float = 0.75  # ... and only if the runner-up scores at most this share of the best
    strong_threshold: float = 65.0  # a match this strong is answered ...
    strong_ratio: float = 0.85  # ... while the runner-up stays under this share of it


class IntList(tuple):
    """A list of whole numbers: a TOML array, or a comma-separated string (env vars)."""

    def __new__(cls, raw: Any = ()) -> "IntList":
        if isinstance(raw, str):
            raw = [part for part in raw.split(",") if part.strip()]
        return super().__new__(cls, (int(item) for item in raw))


@dataclass(frozen=True)
class ReminderSettings:
    """Expiry reminders ([reminders] in TOML): when, how often and how fast (times are Asia/Seoul, "HH:MM")."""

    steps: IntList = IntList((30, 14, 7, 1, 0))  # days before expiry; 0 = the day it expires
    send_time: str = "10:00"  # the daily run; a run missed while the bot was down happens when it is back
    quiet_start: str = "21:00"  # never send from quiet_start ...
    quiet_end: str = "08:00"  # ... to quiet_end (may wrap past midnight)
    rate_per_second: float = 25.0  # overall pace; Telegram allows about 30/s (and 1/s per chat)
    max_in_flight: int = 8  # concurrent Bot API calls while sending a batch
    digest_time: str = "09:00"  # the daily staff digest in the staff chat
    digest_days: int = 30  # the digest lists certificates expiring within this many days


@dataclass(frozen=True)
class Config:
    """All settings of one helpdesk process."""

    db_path: str = "helpdesk.db"
    knowledge_dir: str = str(DEFAULT_KNOWLEDGE_DIR)
    telegram_token: str = ""
    telegram_base_url: str = ""
    telegram_base_file_url: str = ""
    telegram_timeout_seconds: float = 10.0  # Bot API client timeouts (getUpdates adds its long-poll time)
    telegram_poll_seconds: int = 25  # getUpdates long-poll timeout
    telegram_overall_rate: float = 30.0  # messages per second to all chats (Telegram's bot limit)
    telegram_chat_rate: float = 1.0  # messages per second to one chat ("about one a second")
    telegram_chat_burst: int = 3  # short bursts allowed per chat (a reply split in parts)
    staff_chat_id: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    pii_key: str = ""
    fixed_now: str = ""
    contact_text: str = "소속 기관 등록기관 인증담당자"
    link_code_ttl_hours: int = 72
    datacheck_per_hour: int = 5  # application data checks one chat may run per hour
    crl_urls: UrlList = UrlList()  # CRLs `registry refresh` fetches (http://; ldap:// is reported as unsupported)
    ocsp_url: str = ""  # OCSP responder `registry refresh` asks (else the certificates' own AIA entry)
    bot_username: str = ""  # for the link-code deep link https://t.me/<bot_username>?start=<code>
    http_timeout_seconds: float = 10.0
    office_hours: str = "09:00-18:00"  # staff hand-off: when staff answer (Asia/Seoul), "HH:MM-HH:MM"
    office_days: StrList = StrList(("mon", "tue", "wed", "thu", "fri"))
    holidays: StrList = StrList()  # ISO dates without office hours (public holidays)
    ticket_renotify_minutes: int = 15  # an unclaimed ticket is announced again after this long
    matching: MatchingSettings = field(default_factory=MatchingSettings)
    reminders: ReminderSettings = field(default_factory=ReminderSettings)

    def with_overrides(self, **changes: Any) -> "Config":
        """A copy with some settings changed (tests, CLI flags)."""
        return replace(self, **changes)


# env var -> (field name, type)
_ENV = {
    "HELPDESK_DB": ("db_path", str),
    "HELPDESK_KNOWLEDGE_DIR": ("knowledge_dir", str),
    "HELPDESK_TELEGRAM_TOKEN": ("telegram_token", str),
    "HELPDESK_TELEGRAM_BASE_URL": ("telegram_base_url", str),
    "HELPDESK_TELEGRAM_BASE_FILE_URL": ("telegram_base_file_url", str),
    "HELPDESK_TELEGRAM_TIMEOUT_SECONDS": ("telegram_timeout_seconds", float),
    "HELPDESK_TELEGRAM_POLL_SECONDS": ("telegram_poll_seconds", int),
    "HELPDESK_TELEGRAM_OVERALL_RATE": ("telegram_overall_rate", float),
    "HELPDESK_TELEGRAM_CHAT_RATE": ("telegram_chat_rate", float),
    "HELPDESK_TELEGRAM_CHAT_BURST": ("telegram_chat_burst", int),
    "HELPDESK_STAFF_CHAT_ID": ("staff_chat_id", str),
    "HELPDESK_WEBHOOK_URL": ("webhook_url", str),
    "HELPDESK_WEBHOOK_SECRET": ("webhook_secret", str),
    "HELPDESK_WEBHOOK_LISTEN": ("webhook_listen", str),
    "HELPDESK_WEBHOOK_PORT": ("webhook_port", int),
    "HELPDESK_PII_KEY": ("pii_key", str),
    "HELPDESK_NOW": ("fixed_now", str),
    "HELPDESK_CONTACT": ("contact_text", str),
    "HELPDESK_LINK_CODE_TTL_HOURS": ("link_code_ttl_hours", int),
    "HELPDESK_DATACHECK_PER_HOUR": ("datacheck_per_hour", int),
    "HELPDESK_CRL_URLS": ("crl_urls", UrlList),
    "HELPDESK_OCSP_URL": ("ocsp_url", str),
    "HELPDESK_BOT_USERNAME": ("bot_username", str),
    "HELPDESK_HTTP_TIMEOUT_SECONDS": ("http_timeout_seconds", float),
    "HELPDESK_OFFICE_HOURS": ("office_hours", str),
    "HELPDESK_OFFICE_DAYS": ("office_days", StrList),
    "HELPDESK_HOLIDAYS": ("holidays", StrList),
    "HELPDESK_TICKET_RENOTIFY_MINUTES": ("ticket_renotify_minutes", int),
    # "section.field": a field of a [section]
    "HELPDESK_REMINDER_STEPS": ("reminders.steps", IntList),
    "HELPDESK_REMINDER_SEND_TIME": ("reminders.send_time", str),
    "HELPDESK_REMINDER_QUIET_START": ("reminders.quiet_start", str),
    "HELPDESK_REMINDER_QUIET_END": ("reminders.quiet_end", str),
    "HELPDESK_REMINDER_RATE": ("reminders.rate_per_second", float),
    "HELPDESK_REMINDER_MAX_IN_FLIGHT": ("reminders.max_in_flight", int),
    "HELPDESK_REMINDER_DIGEST_TIME": ("reminders.digest_time", str),
}


def _coerce(name: str, kind: type, raw: Any) -> Any:
    try:
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: expected {kind.__name__}, got {raw!r}") from exc


def _section(cls: type, values: Mapping[str, Any], name: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"[{name}] has unknown keys: {', '.join(sorted(unknown))}")
    kwargs = {}
    for key, raw in values.items():
        default = getattr(cls(), key)
        kwargs[key] = _coerce(f"{name}.{key}", type(default), raw)
    return cls(**kwargs)


def load_config(environ: Mapping[str, str] | None = None, toml_path: str | None = None) -> Config:
    """Build the Config from a TOML file (optional) and the environment; raise ConfigError when invalid."""
    environ = os.environ if environ is None else environ
    toml_path = toml_path or environ.get("HELPDESK_CONFIG") or None
    file_values: dict[str, Any] = {}
    if toml_path:
        try:
            file_values = tomllib.loads(Path(toml_path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {toml_path}: {exc}") from exc

    values: dict[str, Any] = {}
    section_types = {f.name: f.default_factory for f in fields(Config) if f.default_factory is not MISSING}  # type: ignore[misc]
    plain = {f.name: f for f in fields(Config) if f.name not in section_types}
    for key, raw in file_values.items():
        if key in section_types:
            if not isinstance(raw, dict):
                raise ConfigError(f"[{key}] must be a table")
            values[key] = _section(section_types[key], raw, key)
        elif key in plain:
            values[key] = _coerce(key, type(getattr(Config(), key)), raw)
        else:
            raise ConfigError(f"unknown setting in {toml_path}: {key}")
    for env_name, (attr, kind) in _ENV.items():
        if environ.get(env_name, "") != "":
            value = _coerce(env_name, kind, environ[env_name])
            section, _, name = attr.rpartition(".")
            if section:
                values[section] = replace(values.get(section) or section_types[section](), **{name: value})
            else:
                values[attr] = value
    config = Config(**values)
    _validate(config)
    return config


def _validate(config: Config) -> None:
    if not Path(config.knowledge_dir).is_dir():
        raise ConfigError(f"knowledge directory not found: {config.knowledge_dir}")
    m = config.matching
    if not 0 <= m.clarify_threshold <= m.answer_threshold <= 100:
        raise ConfigError("matching thresholds must satisfy 0 <= clarify_threshold <= answer_threshold <= 100")
    if config.fixed_now:
        from bot.clock import parse_instant

        try:
            parse_instant(config.fixed_now)
        except ValueError as exc:
            raise ConfigError(f"HELPDESK_NOW is not an ISO-8601 time: {config.fixed_now!r}") from exc
    from bot.handoff import OfficeHours

    try:
        OfficeHours.from_config(config)
    except ValueError as exc:
        raise ConfigError(f"office hours settings: {exc}") from exc
    if config.ticket_renotify_minutes < 1:
        raise ConfigError("ticket_renotify_minutes must be at least 1")
    _validate_reminders(config.reminders)
    if config.reminders.rate_per_second > config.telegram_overall_rate:
        raise ConfigError(f"reminders.rate_per_second ({config.reminders.rate_per_second:g}) must not exceed "
                          f"telegram_overall_rate ({config.telegram_overall_rate:g}): users' answers share that limit")


def _hhmm(name: str, text: str) -> int:
    """"HH:MM" -> minutes after midnight."""
    hours, sep, minutes = text.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ConfigError(f"reminders.{name} must be HH:MM (24-hour), got {text!r}")
    return int(hours) * 60 + int(minutes)


def _validate_reminders(r: ReminderSettings) -> None:
    if not r.steps or any(not 0 <= s <= 366 for s in r.steps) or len(set(r.steps)) != len(r.steps):
        raise ConfigError(f"reminders.steps must be distinct whole days between 0 and 366, got {list(r.steps)}")
    send, start, end = (_hhmm(n, getattr(r, n)) for n in ("send_time", "quiet_start", "quiet_end"))
    _hhmm("digest_time", r.digest_time)
    quiet = (start <= send < end) if start <= end else (send >= start or send < end)
    if quiet and start != end:
        raise ConfigError(f"reminders.send_time {r.send_time} falls in the quiet hours {r.quiet_start}-{r.quiet_end}")
    if r.rate_per_second <= 0 or r.max_in_flight < 1 or r.digest_days < 1:
        raise ConfigError("reminders.rate_per_second, max_in_flight and digest_days must be positive")
