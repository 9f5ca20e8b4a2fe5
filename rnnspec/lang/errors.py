"""Located, user-facing errors.

Every mistake in a spec becomes an :class:`Issue`: where it is (file, line, column and
field path), what was received, what was expected, and how to fix it. A :class:`SpecError`
carries all the issues of one file, so a user sees every mistake at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Issue", "RnnspecError", "SpecError", "format_path", "render_problem"]


def render_problem(head: str | None, message: str, received: str | None, expected: str | None, fix: str | None) -> str:
    """The one layout of every located problem: ``WHERE: message``, then received / expected / fix lines."""
    lines = [f"{head}: {message}" if head else message]
    for label, value in (("received", received), ("expected", expected), ("fix", fix)):
        if value is not None:
            lines.append(f"    {label}: {value}")
    return "\n".join(lines)


def format_path(path: tuple[str | int, ...]) -> str:
    """Render a field path the way a user writes it: ``recurrent[1].units``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class Issue:
    """One located problem in a spec."""

    message: str
    path: tuple[str | int, ...] = ()
    file: str | None = None
    line: int | None = None
    column: int | None = None
    received: str | None = None
    expected: str | None = None
    fix: str | None = None

    @property
    def where(self) -> str:
        """``FILE:LINE:COL`` (as much of it as is known)."""
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def render(self) -> str:
        """Multi-line text: location and field, then what/expected/fix."""
        head = self.where
        if self.path:
            head += f": {format_path(self.path)}"
        return render_problem(head, self.message, self.received, self.expected, self.fix)

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": format_path(self.path),
            "message": self.message,
            "received": self.received,
            "expected": self.expected,
            "fix": self.fix,
        }


class RnnspecError(Exception):
    """Base class of every error rnnspec raises for a user mistake."""


@dataclass
class SpecError(RnnspecError):
    """A spec could not be loaded or is invalid; ``issues`` lists every problem found."""

    issues: list[Issue] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.issues)
        head = f"{n} error{'s' if n != 1 else ''} in spec"
        from rnnspec.util import LIST_CAP

        shown = "\n".join(i.render() for i in self.issues[:LIST_CAP])
        more = f"\n... and {n - LIST_CAP:,} more" if n > LIST_CAP else ""
        return head + ":\n" + shown + more

    def __str__(self) -> str:
        return self.render()
