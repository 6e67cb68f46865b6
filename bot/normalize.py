"""Korean-aware text normalisation for matching: width, case, punctuation, spacing, synonyms, particles.

The synonym table lives in knowledge/synonyms.yaml so staff can extend it; this module only applies it.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path


from bot.yamlfile import load_yaml

_NON_WORD = re.compile(r"[^0-9a-z\uac00-\ud7a3\u3131-\u318e_]+")
_SPACES = re.compile(r"\s+")
_LAUGH = re.compile(r"([ㅋㅎㅠㅜ])\1+")

# Particles and endings stripped from the end of a Hangul word (longest first), when what is left
# keeps at least one syllable. Only the common ones: over-stripping harms more than it helps.
_PARTICLES = sorted(
    """은 는 이 가 을 를 에 의 도 만 로 으로 에서 에게 한테 께 까지 부터 이랑 랑 하고 와 과 이나 나 보다
    처럼 같이 마다 이요 요 이에요 예요 인데 인가요 인지 이랑요 에는 에서는 으로는 로는 에도 에서도 이라고 라고
    이란 란 입니다 인가 죠 이죠""".split(),
    key=len,
    reverse=True,
)


def _load_synonyms(path: Path) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """One alternation of every variant (longest first) and variant -> canonical, from synonyms.yaml.

    The file maps `canonical: [variant, ...]`. Canonical forms map to themselves so that a variant
    inside a canonical form (폰 in 휴대폰) is never replaced twice; one regex pass does it all.
    """
    if not path.is_file():
        return None, {}
    data = load_yaml(path.read_text(encoding="utf-8")) or {}
    table: dict[str, str] = {}
    for canonical, variants in data.items():
        canon = _base_normalize(str(canonical))
        for variant in [canonical, *(variants or [])]:
            key = _base_normalize(str(variant))
            if key and key not in table:
                table[key] = canon
    if not table:
        return None, {}
    alternatives = []
    for variant in sorted(table, key=len, reverse=True):
        escaped = re.escape(variant)
        # ASCII variants match whole words only; Hangul ones anywhere (Korean glues words together).
        alternatives.append(rf"(?<![0-9a-z]){escaped}(?![0-9a-z])" if variant.isascii() else escaped)
    return re.compile("|".join(alternatives)), table


def _base_normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = _LAUGH.sub(r"\1", text)
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


_SYNONYM_FILE = Path(__file__).resolve().parent.parent / "knowledge" / "synonyms.yaml"
_synonyms: tuple[re.Pattern[str] | None, dict[str, str]] | None = None


def set_synonyms_file(path: str | Path) -> None:
    """Use another synonyms file (a knowledge directory other than the bundled one)."""
    global _synonyms, _SYNONYM_FILE, _fillers, _FILLER_FILE
    _SYNONYM_FILE = Path(path)
    _FILLER_FILE = Path(path).with_name("fillers.txt")
    _synonyms = None
    _fillers = None
    normalize.cache_clear()


def _synonym_table() -> tuple[re.Pattern[str] | None, dict[str, str]]:
    global _synonyms
    if _synonyms is None:
        _synonyms = _load_synonyms(_SYNONYM_FILE)
    return _synonyms


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    """Width/case/punctuation folded, synonyms mapped to one canonical form, spaces collapsed."""
    text = _base_normalize(text)
    if not text:
        return ""
    pattern, table = _synonym_table()
    if pattern is not None:
        text = pattern.sub(lambda m: f" {table[m.group(0)]} ", text)
    return _SPACES.sub(" ", text).strip()


_FILLER_FILE = Path(__file__).resolve().parent.parent / "knowledge" / "fillers.txt"
_fillers: frozenset[str] | None = None


def fillers() -> frozenset[str]:
    """Words that carry no topic (알려주세요, 궁금해요...), from knowledge/fillers.txt."""
    global _fillers
    if _fillers is None:
        lines = _FILLER_FILE.read_text(encoding="utf-8").splitlines() if _FILLER_FILE.is_file() else []
        _fillers = frozenset(_base_normalize(l) for l in lines if l.strip() and not l.startswith("#"))
    return _fillers


_PARTICLES_BY_LENGTH = sorted(
    ((n, frozenset(p for p in _PARTICLES if len(p) == n)) for n in {len(p) for p in _PARTICLES}), reverse=True
)


def strip_particle(word: str) -> str:
    """Drop one trailing particle/ending from a Hangul word if at least one syllable remains."""
    for length, particles in _PARTICLES_BY_LENGTH:
        if len(word) > length and word[-length:] in particles:
            return word[:-length]
    return word


def words(normalized: str) -> list[str]:
    """Content words of a normalised text, particles stripped."""
    return [strip_particle(w) for w in normalized.split() if w]
