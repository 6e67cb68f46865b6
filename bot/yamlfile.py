"""YAML for the knowledge files: the C parser when PyYAML has it (several times faster at start-up)."""
from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAMLError = yaml.YAMLError


def load_yaml(text: str) -> Any:
    """Parse YAML safely (no Python objects), as `yaml.safe_load` does."""
    return yaml.load(text, Loader=_LOADER)
