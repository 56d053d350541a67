"""A page's steps as a lecture walks them (issue 11), for every page that has them: numbered
from 1 as in the URL (`?step=3`), each step an object with at least a `title`. Pure Python;
cnnlab.ui.walkthrough draws the buttons and binds the keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S")


@dataclass(frozen=True)
class Step:
    """A step of a page that draws one part of itself per step (Train, Classify)."""

    number: int          # 1-based, as in the URL (`?step=3`)
    part: str            # which part of the page it draws
    title: str


def numbered(parts: Sequence[tuple[str, str]]) -> tuple[Step, ...]:
    """Steps from (part, title) pairs, numbered from 1 in that order."""
    return tuple(Step(number, part, title) for number, (part, title) in enumerate(parts, 1))


class Walk(Generic[S]):
    """The steps of one page, `first` (1) to `last`."""

    def __init__(self, steps: Sequence[S]) -> None:
        self.steps = tuple(steps)
        self.first, self.last = 1, len(self.steps)

    def step(self, number: int) -> S:
        """Step `number` (1-based); ValueError outside first..last."""
        if not self.first <= number <= self.last:
            raise ValueError(f"no step {number}: steps are {self.first} to {self.last}")
        return self.steps[number - 1]

    def title(self, number: int) -> str:
        return self.step(number).title

    def number_of(self, text: str | None) -> int | None:
        """The step a URL's `step=` names, or None when it names none (absent or bad)."""
        try:
            number = int(text) if text is not None else None
        except ValueError:
            return None
        return number if number is not None and self.first <= number <= self.last else None
