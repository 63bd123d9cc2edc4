"""What every desk's CLI shares: one-line errors, progress bars on stderr, plain tables and JSON output.

Data errors exit with code 1 and one line naming the field; option errors with code 2. Progress goes to
stderr (and not at all with --json), so stdout holds only the results.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console()
err = Console(stderr=True)

DATA_ERROR = 1
OPTION_ERROR = 2

Progressor = Callable[[int, int], None] | None

JsonOpt = Annotated[bool, typer.Option("--json", help="Print only the results as JSON on stdout.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Random seed (recorded in the result).")]


def fail(message: str, code: int = DATA_ERROR) -> typer.Exit:
    """Print one error line on stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def engine_errors(run: Callable[[], Any]) -> Any:
    """Run an engine call, turning its refusals (a ValueError naming the field: bad data, not a bug) into one
    error line with exit code 1."""
    try:
        return run()
    except ValueError as exc:
        raise fail(str(exc)) from None


def figures_table(title: str, columns: list[str]) -> Table:
    """A plain table: the first column left-aligned, the figures right-aligned."""
    out = Table(title=title, box=box.SIMPLE)
    for i, c in enumerate(columns):
        out.add_column(c, justify="left" if i == 0 else "right")
    return out


@contextmanager
def progress(label: str, quiet: bool) -> Iterator[Progressor]:
    """A progress bar on stderr fed by the engine's progress(done, total); none with --json."""
    if quiet:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(data), indent=2) + "\n")


def jsonable(data: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays to Python, non-finite floats to null."""
    if hasattr(data, "model_dump"):
        return jsonable(data.model_dump(mode="json"))
    if isinstance(data, dict):
        return {str(k): jsonable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [jsonable(v) for v in data]
    if hasattr(data, "tolist"):
        return jsonable(data.tolist())
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def money(value: float) -> str:
    """USD in millions with one decimal, as the tables show it."""
    return f"{value / 1e6:,.1f}m"
