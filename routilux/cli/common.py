"""What the ``routilux`` commands share: one-line errors, opening stores, loading flows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from routilux.checkpoint.stores import open_store as _open
from routilux.cli.loading import load_flow
from routilux.exceptions import RoutiluxError


def fail(message: str) -> None:
    """Stop the command with ``message`` as its one-line error."""
    raise click.ClickException(message)


def open_store(path: str, *, must_exist: bool = False, read_only: bool = False) -> Any:
    """Open a checkpoint store; ``read_only`` stores are never changed (no key file,
    no schema) — for commands that only look."""
    if (must_exist or read_only) and not Path(path).exists():
        fail(f"no checkpoint store at {path}")
    return _open(path, create=not read_only)  # a str: a trailing "/" means a directory


def load_target(target: str, allow: tuple[str, ...] = ()) -> Any:
    """The flow TARGET names, or a one-line error saying why it cannot be loaded."""
    try:
        return load_flow(target, allow)
    except RoutiluxError:
        raise
    except SyntaxError as exc:
        fail(f"{target}: syntax error in {exc.filename} line {exc.lineno}: {exc.msg}")
    except Exception as exc:
        fail(f"{target}: importing it raised {type(exc).__name__}: {exc}")


def one_line_usage(exc: click.UsageError) -> click.ClickException:
    """A usage error as one line (click's own takes three) with where to get help."""
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    error = click.ClickException(exc.format_message().rstrip(".") + where)
    error.exit_code = exc.exit_code
    return error


class RoutiluxGroup(click.Group):
    """Turns library and usage errors into one-line messages instead of tracebacks."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:
            raise  # plain `routilux` shows the help
        except click.UsageError as exc:
            raise one_line_usage(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise one_line_usage(exc) from None
        except BrokenPipeError:
            raise  # `routilux jobs | head`: click exits quietly on EPIPE
        except OSError as exc:  # name the file and the reason, not "[Errno 13]"
            reason = exc.strerror or str(exc) or type(exc).__name__
            where = f"{exc.filename}: " if exc.filename is not None else ""
            raise click.ClickException(f"{where}{reason}") from None
        except (RoutiluxError, ValueError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise click.ClickException(message) from None
