"""How a command fails: a message on stderr and an exit code, never a Python traceback for a user's mistake."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

from rnnspec.lang.errors import RnnspecError, SpecError
from rnnspec.util import OutputPathError, printable

__all__ = ["fail", "user_errors"]

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` on stderr; the exit to raise (``code`` 1: invalid input, 2: usage error).

    Bytes of a non-UTF-8 file name in it are printed as ``\\xff``-style escapes (never a UnicodeEncodeError)."""
    typer.echo(printable(message), err=True)
    return typer.Exit(code)


def user_errors(func: F) -> F:
    """Turn rnnspec's user-facing errors into a message on stderr and exit code 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            raise fail(exc.render()) from None
        except RnnspecError as exc:
            raise fail(f"error: {exc}") from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            if isinstance(exc, OutputPathError) and "fix:" in str(exc.strerror):  # it says itself what to do
                raise fail(f"error: {where}{exc.strerror}") from None
            raise fail(f"error: {where}{exc.strerror or exc}; check the path and its permissions") from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper  # type: ignore[return-value]
