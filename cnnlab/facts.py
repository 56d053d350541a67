"""Published numbers with their sources, read from `cnnlab/data/facts.toml`.

`fact("resnet50.top5_error")` is a `Fact`: its value as published (a number, or a table of
numbers such as a paper's column), the conditions it was measured under, and where it is
published (`fact(...).citation` -> "He et al. 2015, Table 3"). Pages and modules read
published numbers only from here, so each is typed once, next to its source, and
tests/test_facts.py checks it against a second statement of it.

Pure Python (tomllib): no imports from the rest of cnnlab.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FACTS_PATH = Path(__file__).resolve().parent / "data" / "facts.toml"
FACT_FIELDS = ("value", "unit", "what", "source", "where")


class UnknownFact(KeyError):
    """A fact or source that the facts file does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Source:
    """A paper or document that publishes facts."""

    key: str
    cite: str      # how a page names it, e.g. "He et al. 2015"
    authors: str
    title: str
    venue: str
    year: int


@dataclass(frozen=True)
class Fact:
    """One published number (or table of numbers) and where it is published."""

    key: str
    value: Any     # a number, or a dict of numbers (keys that are digits become ints)
    unit: str
    what: str      # the conditions it was measured under
    source: Source
    where: str     # table, section or figure

    @property
    def citation(self) -> str:
        """Where to read it: "He et al. 2015, Table 3"."""
        return f"{self.source.cite}, {self.where}"


def _keys_as_numbers(table: dict[str, Any]) -> dict[str | int, Any]:
    return {int(k) if k.isdigit() else k: v for k, v in table.items()}


@functools.cache
def _load() -> tuple[dict[str, Source], dict[str, Fact]]:
    with FACTS_PATH.open("rb") as f:
        data = tomllib.load(f)
    sources = {key: Source(key=key, **entry) for key, entry in data.pop("sources").items()}
    facts: dict[str, Fact] = {}
    for subject, entries in data.items():
        for name, entry in entries.items():
            key = f"{subject}.{name}"
            if set(entry) != set(FACT_FIELDS):
                raise ValueError(f"{FACTS_PATH.name}: [{key}] must have exactly the fields "
                                 f"{', '.join(FACT_FIELDS)}; it has {', '.join(sorted(entry))}")
            if entry["source"] not in sources:
                raise ValueError(f"{FACTS_PATH.name}: [{key}] cites unknown source "
                                 f"{entry['source']!r}")
            value = entry["value"]
            facts[key] = Fact(key=key, value=_keys_as_numbers(value) if isinstance(value, dict)
                              else value, unit=entry["unit"], what=entry["what"],
                              source=sources[entry["source"]], where=entry["where"])
    return sources, facts


def fact(key: str) -> Fact:
    """The fact called `key` ("subject.name", e.g. "alexnet.top5_error")."""
    facts = _load()[1]
    if key not in facts:
        raise UnknownFact(f"no fact {key!r} in {FACTS_PATH.name}")
    return facts[key]


def source(key: str) -> Source:
    """The paper or document called `key` (e.g. "he2015")."""
    sources = _load()[0]
    if key not in sources:
        raise UnknownFact(f"no source {key!r} in {FACTS_PATH.name}")
    return sources[key]


def all_facts() -> dict[str, Fact]:
    """Every fact, by key, in the file's order."""
    return dict(_load()[1])
