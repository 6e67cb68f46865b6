"""Settings from environment variables and an optional TOML file, validated once into a frozen dataclass.

Precedence: environment variable > TOML file (`HELPDESK_CONFIG`) > default. Every feature reads its
settings from here; nothing else looks at the environment.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it (in English, for operators)."""


@dataclass(frozen=True)
class MatchingSettings:
    """Thresholds of the answer / clarify / fallback decision (chosen on the dev set)."""

    answer_threshold: float = 62.0
    clarify_threshold: float = 40.0
    clarify_margin: float = 6.0


@dataclass(frozen=True)
class Config:
    """All settings of one helpdesk process."""

    db_path: str = "helpdesk.db"
    knowledge_dir: str = str(DEFAULT_KNOWLEDGE_DIR)
    telegram_token: str = ""
    telegram_base_url: str = ""
    telegram_base_file_url: str = ""
    staff_chat_id: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    pii_key: str = ""
    fixed_now: str = ""
    contact_text: str = "소속 기관 등록기관 인증담당자"
    link_code_ttl_hours: int = 72
    matching: MatchingSettings = field(default_factory=MatchingSettings)

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
    "HELPDESK_STAFF_CHAT_ID": ("staff_chat_id", str),
    "HELPDESK_WEBHOOK_URL": ("webhook_url", str),
    "HELPDESK_WEBHOOK_SECRET": ("webhook_secret", str),
    "HELPDESK_WEBHOOK_LISTEN": ("webhook_listen", str),
    "HELPDESK_WEBHOOK_PORT": ("webhook_port", int),
    "HELPDESK_PII_KEY": ("pii_key", str),
    "HELPDESK_NOW": ("fixed_now", str),
    "HELPDESK_CONTACT": ("contact_text", str),
    "HELPDESK_LINK_CODE_TTL_HOURS": ("link_code_ttl_hours", int),
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
    section_types = {f.name: f.default_factory for f in fields(Config) if f.default_factory is not None}  # type: ignore[misc]
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
            values[attr] = _coerce(env_name, kind, environ[env_name])
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
