"""A page's view in the URL: bookmark any view, open the bookmark, see the same view.

A page declares its view as `Param`s: the URL name, the widget's key, how to read the text
(`parse`, which raises ValueError with a short reason) and the widget's default. Then

    view = UrlView("train")
    view.bind(param)            # before the param's widget: the URL's value goes into the
                                #   widget's session_state (a bad one is collected, not used)
    ...the widgets...
    view.sync()                 # after them: the URL follows the widgets (defaults left out)
    view.notice()               # "Ignored in the link: epochs='abc' (not a whole number ...)"

A value the URL brings is applied once (when it differs from what this session last wrote
or saw), so the widgets are free afterwards. Streamlit forgets a widget's state when the
widget is not drawn (another step, another page); the view keeps each param's last value and
puts it back when the widget returns, so a walk through steps or pages keeps the view. The
URL keys a view does not own (`present`, `owner`, ...) are left alone.

The Calculator keeps its own URL format (cnnlab.calc.presets.to_query/from_query); this is
the same idea for the other pages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import streamlit as st

from cnnlab.ui.safe import plain

Number = TypeVar("Number", int, float)
_STATE = "_url_state"       # session_state: {page: {"seen": {...}, "kept": {...}}}
MAX_SHOWN = 40              # characters of a bad value quoted in the notice


@dataclass(frozen=True)
class Param:
    """One URL query parameter bound to one widget."""

    name: str                                   # in the URL: ?name=value
    key: str                                    # the widget's key in session_state
    parse: Callable[[str], Any]                 # text -> value; ValueError(reason) if bad
    default: Any = None                         # left out of the URL
    format: Callable[[Any], str] = str          # value -> text


# ---------------------------------------------------------------------------- parsers


def _in_range(convert: Callable[[str], Number], low: Number, high: Number,
              reason: str) -> Callable[[str], Number]:
    """`convert(text)` when it is from `low` to `high`; ValueError(`reason`) otherwise."""
    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise ValueError(reason) from None
        if not low <= value <= high:   # NaN fails here too
            raise ValueError(reason)
        return value
    return parse


def integer(low: int, high: int) -> Callable[[str], int]:
    return _in_range(int, low, high, f"not a whole number from {low} to {high}")


def decimal(low: float, high: float) -> Callable[[str], float]:
    return _in_range(float, low, high, f"not a number from {low:g} to {high:g}")


def choice(options: Sequence[Any], fmt: Callable[[Any], str] = str) -> Callable[[str], Any]:
    """One of `options`, written as `fmt(option)`."""
    by_text = {fmt(option): option for option in options}

    def parse(text: str) -> Any:
        if text not in by_text:
            shown = ", ".join(list(by_text)[:8]) + (", ..." if len(by_text) > 8 else "")
            raise ValueError(f"not one of {shown}")
        return by_text[text]
    return parse


def choices(options: Sequence[Any], fmt: Callable[[Any], str] = str) -> Callable[[str], list]:
    """Several of `options`, comma-separated (a multiselect or multi pills)."""
    one = choice(options, fmt)

    def parse(text: str) -> list:
        picked = [one(part) for part in text.split(",") if part]
        return list(dict.fromkeys(picked))
    return parse


def join(values: Sequence[Any], fmt: Callable[[Any], str] = str) -> str:
    return ",".join(fmt(v) for v in values)


def flag(text: str) -> bool:
    if text in ("1", "true", "on"):
        return True
    if text in ("0", "false", "off"):
        return False
    raise ValueError("not 1 or 0")


def flag_text(value: bool) -> str:
    return "1" if value else "0"


def number_text(value: float) -> str:
    return f"{value:g}"


# ---------------------------------------------------------------------------- the view


_UNSET = object()


@dataclass
class UrlView:
    """The URL view of one page during one script run."""

    page: str
    bound: dict[str, Param] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)

    def _memory(self) -> dict[str, dict]:
        pages = st.session_state.setdefault(_STATE, {})
        return pages.setdefault(self.page, {"seen": {}, "kept": {}})

    def bind(self, param: Param) -> Any:
        """Before the widget: put the URL's value (a new link) or the kept one (the widget
        returns) into its session_state. Returns the value the widget will show, or the
        param's default when neither applies and the widget is new."""
        memory = self._memory()
        self.bound[param.name] = param
        text = st.query_params.get(param.name)
        if text is not None and text != memory["seen"].get(param.name):
            memory["seen"][param.name] = text
            try:
                value = param.parse(text)
            except ValueError as error:
                line = f"{param.name}={text[:MAX_SHOWN]!r} ({error})"
                self.bad.append(line)
                memory.setdefault("bad", {})[param.name] = [line, _UNSET]
            else:
                memory.setdefault("bad", {}).pop(param.name, None)
                st.session_state[param.key] = value
                memory["kept"][param.name] = (param.key, value)
                return value
        elif self._still_bad(memory, param):
            pass
        elif param.key not in st.session_state:
            kept = memory["kept"].get(param.name)
            if kept is not None and kept[0] == param.key:
                try:   # a kept value is re-checked: the options may have changed since
                    value = param.parse(param.format(kept[1]))
                except ValueError:
                    memory["kept"].pop(param.name)
                else:
                    st.session_state[param.key] = value
                    return value
        return st.session_state.get(param.key, param.default)

    def _still_bad(self, memory: dict, param: Param) -> bool:
        """A link's bad value keeps its notice on later runs (a page may rerun at once, e.g.
        to write a cookie) until that setting is changed; False once it has been."""
        entry = memory.get("bad", {}).get(param.name)
        if entry is None:
            return False
        line, shown_with = entry
        if shown_with is not _UNSET and st.session_state.get(param.key, param.default) \
                != shown_with:
            memory["bad"].pop(param.name)
            return False
        self.bad.append(line)
        return True

    def sync(self) -> None:
        """After the widgets: the URL carries every kept value that is not its default."""
        memory = self._memory()
        for name, entry in memory.get("bad", {}).items():
            if entry[1] is _UNSET and name in self.bound:   # the value the notice came with
                param = self.bound[name]
                entry[1] = st.session_state.get(param.key, param.default)
        for name, param in self.bound.items():
            if param.key in st.session_state:
                memory["kept"][name] = (param.key, st.session_state[param.key])
            elif name in memory["kept"] and memory["kept"][name][0] != param.key:
                memory["kept"].pop(name)
        for name, (key, value) in list(memory["kept"].items()):
            param = self.bound.get(name)
            default = param.default if param is not None and param.key == key else None
            fmt = param.format if param is not None else str
            text = None if value is None or value == default else fmt(value)
            if st.query_params.get(name) != text:
                if text is None:
                    del st.query_params[name]
                else:
                    st.query_params[name] = text
            memory["seen"][name] = text

    def forget(self, *names: str) -> None:
        """Drop params from the view and the URL (a view that no longer has them)."""
        memory = self._memory()
        for name in names:
            memory["kept"].pop(name, None)
            memory["seen"][name] = None
            self.bound.pop(name, None)
            if name in st.query_params:
                del st.query_params[name]

    def notice(self, container=None) -> None:
        """One line naming the link's values that were ignored (nothing when all were good)."""
        if self.bad:
            (container or st).warning(plain("Ignored in the link: " + "; ".join(self.bad) + ".",
                                            1000), icon=":material/link_off:")
