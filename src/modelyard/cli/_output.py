"""Printing: Rich tables for people, ``--json`` for scripts, one error style.

Rich is imported on first use (it costs ~0.1 s of start-up): a command that prints JSON,
or nothing, never loads it.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from modelyard.core.errors import InvalidInput, ModelyardError

if TYPE_CHECKING:
    from rich.console import Console


class LazyConsole:
    """A Rich console made on first use; ``print`` and ``is_terminal`` as Rich's."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def rich(self) -> Console:
        """The Rich console itself (created now if need be)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def print(self, *objects: Any, **options: Any) -> None:
        self.rich.print(*objects, **options)

    @property
    def is_terminal(self) -> bool:
        return self.rich.is_terminal


console = LazyConsole()
err_console = LazyConsole(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a NamedTuple
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(_plain(value), indent=2, sort_keys=True, default=str))


def fmt_time(epoch_s: float | None) -> str:
    if epoch_s is None:
        return "-"
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_table(
    rows: Sequence[Any],
    columns: Sequence[tuple[str, Callable[[Any], object]]],
    *,
    as_json: bool,
    title: str | None = None,
) -> None:
    if as_json:
        print_json(list(rows))
        return
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for header, _ in columns:
        table.add_column(header)
    for row in rows:
        table.add_row(*(str(getter(row)) for _, getter in columns))
    console.print(table)


def fail(message: str, code: int = 1) -> NoReturn:
    from rich.markup import escape  # the message is text: ``modelyard[plot]`` is no markup

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn modelyard errors into one red line and a non-zero exit, never a traceback."""
    try:
        yield
    except InvalidInput as exc:
        fail(exc.message, 2)
    except ModelyardError as exc:
        fail(exc.message, 1)
