"""The ``rnnspec`` command line: the typer app, its commands in the order ``--help`` lists them, and ``main``.

Exit codes: 0 ok, 1 invalid input or a failed check, 2 usage error. A user mistake never
prints a Python traceback. Each command lives in the module of its group (``spec``: validate, summary,
schema; ``build``; ``interop``: import, export, convert; ``train``; ``evaluate``; ``predict``; ``bench``;
``check``); the options they share are in ``options``.
"""

from __future__ import annotations

import sys

import typer

try:  # typer vendors click since 0.2x
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException

from rnnspec.cli import bench, build, check, evaluate, interop, options, predict, spec, train
from rnnspec.cli.invocation import empty_output, record

__all__ = ["app", "main"]

app = typer.Typer(
    name="rnnspec",
    help="Compile one declarative spec of a recurrent sequence model into equivalent Keras, PyTorch and "
    "NumPy models.\n\nExit codes: 0 ok, 1 invalid input or failed check, 2 usage error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.callback()(options.root)
app.command()(spec.validate)
app.command()(spec.summary)
app.command()(spec.schema)
app.command()(build.build)
app.command()(interop.convert)
app.command("import")(interop.import_)
app.command()(interop.export)
app.command()(train.train)
app.command()(evaluate.evaluate)
app.command()(predict.predict)
app.command()(bench.bench)
app.command()(check.check)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m rnnspec``."""
    args = sys.argv[1:] if argv is None else argv
    if empty_output(args):
        message = 'error: -o/--output is empty (""); name a file or folder (use -o . for the working folder)'
        typer.echo(message, err=True)
        return 2
    record(args)
    try:
        code = app(args=argv, prog_name="rnnspec", standalone_mode=False)
    except ClickException as exc:  # a usage error: the same `error:` line as every other failure
        return _usage_error(exc)
    except typer.Abort:
        typer.echo("interrupted", err=True)
        return 130
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return code if isinstance(code, int) else 0


def _usage_error(exc: ClickException) -> int:
    """Print a usage error as every command prints its errors (``error: ...``), after the usage line; its code."""
    from rnnspec.util import printable

    if type(exc).__name__ == "NoArgsIsHelpError":  # the help, printed already
        return exc.exit_code
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        typer.echo(f"{ctx.get_usage()}\nTry '{ctx.command_path} {ctx.help_option_names[0]}' for help.", err=True)
    typer.echo(printable(f"error: {exc.format_message()}"), err=True)
    return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
