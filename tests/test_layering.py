"""The core never depends on the Telegram adapter: bot/ imports neither telegram nor handlers."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("telegram", "handlers")
CORE_FILES = sorted((ROOT / "bot").rglob("*.py"))


def imported_modules(path: Path) -> list[str]:
    """Every module an `import` / `from ... import` names, at any depth (functions too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names.append(str(node.args[0].value))
    return names


def test_there_are_core_files_to_check():
    assert len(CORE_FILES) >= 10


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_does_not_import_the_adapter(path: Path):
    bad = [name for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN]
    assert bad == [], (f"{path.relative_to(ROOT)} imports {bad}: the core must run without the Telegram adapter; "
                       "let a handlers/ module plug in instead (COMMAND_MODULES in bot/cli.py for a command, "
                       "EXTENSIONS in handlers/app.py for jobs and handlers)")


@pytest.mark.parametrize("source, expected", [
    ("import telegram", ["telegram"]),
    ("from telegram.ext import Application", ["telegram.ext"]),
    ("def f():\n    import handlers.app", ["handlers.app"]),
    ("import importlib\nimportlib.import_module('handlers.cli')", ["importlib", "handlers.cli"]),
    ("from bot import render", ["bot"]),
])
def test_the_check_sees_every_kind_of_import(tmp_path: Path, source: str, expected: list[str]):
    path = tmp_path / "sample.py"
    path.write_text(source, encoding="utf-8")
    assert imported_modules(path) == expected


def test_cli_start_up_does_not_import_telegram():
    """`helpdesk ask` and friends build the whole parser (`run` included) without loading telegram."""
    code = ("import sys, bot.cli; bot.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('telegram', 'handlers')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['handlers', 'handlers.cli']"
