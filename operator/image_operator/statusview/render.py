"""A tree of `Node`s as lines of text: a symbol per state, progress bars, ETAs, and colour only
where it helps (a terminal, no NO_COLOR); plain ASCII where the output cannot encode more."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from image_operator.statusview import times
from image_operator.statusview.health import Health, Verdict
from image_operator.statusview.tree import Node

#: (Unicode, ASCII) symbol and ANSI colour of each state.
_LOOK: dict[Health, tuple[str, str, str]] = {
    Health.READY: ("✔", "[+]", "32"),
    Health.IN_PROGRESS: ("◐", "[~]", "33"),
    Health.STALLED: ("✖", "[!]", "1;31"),
    Health.FAILED: ("✘", "[x]", "31"),
    Health.PAUSED: ("⏸", "[=]", "36"),
    Health.DELETING: ("⊘", "[-]", "35"),
    Health.INACTIVE: ("○", "[ ]", "2"),
    Health.UNKNOWN: ("?", "[?]", "2"),
}
_INFO = ("•", "*")
#: Tree connectors: (branch, last branch, continuation, blank), Unicode and ASCII.
_UNICODE_LINKS = ("├── ", "└── ", "│   ", "    ")
_ASCII_LINKS = ("|-- ", "`-- ", "|   ", "    ")
BAR_WIDTH = 10
_SAMPLE = "".join(look[0] for look in _LOOK.values()) + _INFO[0] + "".join(_UNICODE_LINKS) + "█░·"


def legend(unicode: bool = True) -> str:
    """What each symbol means, for --help and the docs."""
    return ", ".join(f"{look[0 if unicode else 1]} {h.value}" for h, look in _LOOK.items())


def colour_wanted(choice: str, *, isatty: bool, env: Mapping[str, str]) -> bool:
    """--color=always|never, or auto: a terminal, NO_COLOR unset or empty (no-color.org), and
    not TERM=dumb."""
    if choice in ("always", "never"):
        return choice == "always"
    return isatty and not env.get("NO_COLOR") and env.get("TERM") != "dumb"


def unicode_ok(encoding: str | None) -> bool:
    """Whether the output's encoding can carry the symbols and box-drawing characters."""
    try:
        _SAMPLE.encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


@dataclass(frozen=True)
class Style:
    colour: bool = False
    unicode: bool = True

    def paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and text else text

    def symbol(self, verdict: Verdict | None) -> str:
        if verdict is None:
            return _INFO[0 if self.unicode else 1]
        unicode_symbol, ascii_symbol, code = _LOOK[verdict.health]
        return self.paint(unicode_symbol if self.unicode else ascii_symbol, code)

    def state(self, verdict: Verdict) -> str:
        text = verdict.word
        if verdict.progress is not None and verdict.health is Health.IN_PROGRESS:
            text += f" {self.bar(verdict.progress)} {verdict.progress}%"
        if verdict.eta_seconds is not None:
            text += f" ETA {times.span(verdict.eta_seconds)}"
        return self.paint(text, _LOOK[verdict.health][2])

    def bar(self, percent: int) -> str:
        filled = BAR_WIDTH * max(0, min(100, percent)) // 100
        full, empty = ("█", "░") if self.unicode else ("#", ".")
        return f"[{full * filled}{empty * (BAR_WIDTH - filled)}]"

    @property
    def links(self) -> tuple[str, str, str, str]:
        return _UNICODE_LINKS if self.unicode else _ASCII_LINKS

    @property
    def separator(self) -> str:
        return " · " if self.unicode else ", "


def head(node: Node, style: Style) -> str:
    """A node's own line: symbol, title, state, facts."""
    parts = [f"{style.symbol(node.verdict)} {style.paint(node.title, '1')}"]
    if node.verdict is not None:
        parts.append(style.state(node.verdict))
    if node.facts:
        parts.append(style.paint(style.separator.join(node.facts), "2"))
    return "  ".join(parts)


def render(root: Node, style: Style = Style()) -> list[str]:
    """The tree as lines, `root` first and its notes under it."""
    lines: list[str] = []
    _walk(root, "", "", style, lines)
    return lines


def _walk(node: Node, first: str, rest: str, style: Style, lines: list[str]) -> None:
    branch, last, through, blank = style.links
    lines.append(first + head(node, style))
    # Notes line up with the title, with the line to the children passing on their left.
    indent = 2 if style.unicode else 4  # the symbol and a space
    under = rest + (through if node.children else blank)[:indent]
    code = "2"
    if node.verdict is not None and node.verdict.health in (Health.STALLED, Health.FAILED):
        code = _LOOK[node.verdict.health][2]
    lines.extend(under + style.paint(note, code) for note in node.notes)
    for index, child in enumerate(node.children):
        final = index == len(node.children) - 1
        links = (last, blank) if final else (branch, through)
        _walk(child, rest + links[0], rest + links[1], style, lines)
