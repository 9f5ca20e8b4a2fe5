"""The arguments of this invocation of ``rnnspec``: kept so that ``--nproc`` can run the same command in
each process, and checked for what click cannot see (an empty ``-o``)."""

from __future__ import annotations

__all__ = ["arguments", "empty_output", "record", "without_nproc"]

_ARGV: list[str] = []
"""The arguments of this invocation (``train --nproc`` runs them again in each process)."""


def record(argv: list[str]) -> None:
    """Keep the arguments of this invocation (the console script's, or ``main(argv)``'s)."""
    _ARGV[:] = list(argv)


def arguments() -> list[str]:
    """The arguments of this invocation, as :func:`record` kept them."""
    return list(_ARGV)


def empty_output(argv: list[str]) -> bool:
    """Whether ``-o ""`` (or ``--output=``) was given: Path("") would silently mean the working folder."""
    for k, arg in enumerate(argv):
        if arg in ("-o", "--output") and k + 1 < len(argv) and argv[k + 1] == "":
            return True
        if arg in ("--output=", "-o="):
            return True
    return False


def without_nproc(args: list[str]) -> list[str]:
    """``args`` less ``--nproc N`` / ``--nproc=N``: what each of the N processes runs."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out
