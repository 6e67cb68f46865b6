"""The one jinja2 environment: templates in knowledge/templates, short messages in knowledge/messages.

Output is Telegram HTML (autoescape on), so every user-supplied or data value is escaped; the console
turns it into plain text with `to_plain`.
"""
from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from bot.yamlfile import load_yaml


class RenderError(RuntimeError):
    """A template or message is missing or broken (operator-facing, in English)."""


def date_ko(value: Any) -> str:
    """2026-12-26 -> 2026년 12월 26일 (the `date_ko` filter in templates)."""
    try:
        return f"{value.year}년 {value.month}월 {value.day}일"
    except AttributeError:
        return str(value)


class Renderer:
    """Renders templates (`render`), KB answers (`from_source`) and one-line messages (`message`)."""

    def __init__(self, knowledge_dir: str | Path, globals_: dict[str, Any] | None = None) -> None:
        self.knowledge_dir = Path(knowledge_dir)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.knowledge_dir / "templates")),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["date_ko"] = date_ko
        self.env.globals.update(globals_ or {})
        self._compiled: dict[str, jinja2.Template] = {}
        self._messages = self._load_messages()

    def _load_messages(self) -> dict[str, str]:
        messages: dict[str, str] = {}
        folder = self.knowledge_dir / "messages"
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            try:
                data = load_yaml(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise RenderError(f"{path}: not valid YAML: {exc}") from exc
            if not isinstance(data, dict):
                raise RenderError(f"{path}: expected a mapping of key -> message")
            for key, value in _flatten(data):
                if key in messages:
                    raise RenderError(f"{path}: message key {key!r} defined twice")
                messages[key] = str(value)
        return messages

    def render(self, template_name: str, /, **context: Any) -> str:
        """Render `knowledge/templates/<template_name>` (e.g. "fallback.j2")."""
        try:
            return self.env.get_template(template_name).render(**context).strip()
        except jinja2.TemplateError as exc:
            raise RenderError(f"template {template_name}: {exc}") from exc

    def from_source(self, key: str, source: str, /, **context: Any) -> str:
        """Render template source (a KB answer), compiled once per key."""
        template = self._compiled.get(key)
        if template is None:
            try:
                template = self._compiled[key] = self.env.from_string(source)
            except jinja2.TemplateSyntaxError as exc:
                raise RenderError(f"{key}: line {exc.lineno}: {exc.message}") from exc
        try:
            return template.render(**context).strip()
        except jinja2.TemplateError as exc:
            raise RenderError(f"{key}: {exc}") from exc

    def message(self, key: str, /, **context: Any) -> str:
        """Render a one-line message from knowledge/messages/*.yaml (dotted key, e.g. "button.home")."""
        try:
            source = self._messages[key]
        except KeyError as exc:
            raise RenderError(f"no message {key!r} in {self.knowledge_dir / 'messages'}") from exc
        return self.from_source(f"message:{key}", source, **context)

    def has_message(self, key: str) -> bool:
        return key in self._messages


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            items.extend(_flatten(value, full + "."))
        else:
            items.append((full, value))
    return items


_TAG = re.compile(r"<[^>]+>")


@lru_cache(maxsize=4096)
def to_plain(text: str) -> str:
    """Telegram HTML -> plain text for the terminal."""
    return html.unescape(_TAG.sub("", text))
