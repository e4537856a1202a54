"""The typer commands, one module per command group, each imported only when one of its commands runs.

A command module defines `app` (made with `command_app`) and its commands (`cls=Command`); the
table in `replctl.cli` names the module. A command parses options, builds objects through the
`State` of the global options (`state(ctx)`), calls one core function, renders, and lets errors
propagate to the one catch site in `replctl.cli`. typer lives here and in `replctl.cli` only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:  # pragma: no cover
    from replctl.cli import State


class _FlagsShowNoValue:
    """Help shows no value placeholder for a flag: it takes none (typer would print `<bool>`).

    typer's rich help prints an option's metavar, when one is set, in place of its type
    (`TyperOption.display_type_rich`); an empty metavar leaves the column blank. Applied to every
    parameter the command has, typer's own `--help` and completion flags included.
    """

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class Command(_FlagsShowNoValue, TyperCommand):
    """A replctl command (pass it as `cls=` to `app.command`)."""


class Group(_FlagsShowNoValue, TyperGroup):
    """A replctl command group (`command_app` uses it)."""


def command_app(**kwargs: Any) -> typer.Typer:
    """The `app` of a command module: markdown help like the root's, no completion options of its own."""
    return typer.Typer(cls=Group, rich_markup_mode="markdown", add_completion=False, **kwargs)


def result_document(result: str, plan: Any, log: Any = None, error: Any = None) -> dict[str, Any]:
    """The `-o json` document of a command that plans and applies (deploy, destroy): the result, the
    plan, what was done (`log.to_dict()`) and, on failure, the error with its exit code."""
    out: dict[str, Any] = {"result": result, "changes": plan.changes, "plan": plan.to_dict()}
    if log is not None:
        out.update(log.to_dict())
    if error is not None:
        out["error"] = {"message": error.message, "hint": error.hint, "exit_code": int(error.exit_code)}
    return out


@contextmanager
def applying(output: Any, plan: Any, log: Any, reporter: Any) -> Iterator[None]:
    """Around a plan's apply (deploy, destroy): with `-o json` a failure or Ctrl-C still prints the
    result document with what was done so far; the progress reporter is closed either way."""
    from replctl.errors import ReplctlError

    try:
        yield
    except ReplctlError as exc:
        if output.json:
            output.emit_json(result_document("failed", plan, log, exc))
        raise
    except KeyboardInterrupt:
        if output.json:
            output.emit_json(result_document("interrupted", plan, log))
        raise
    finally:
        reporter.close()


def state(ctx: typer.Context) -> State:
    """The global options' `State`, which the root callback in `replctl.cli` puts on the context."""
    return ctx.find_root().obj  # type: ignore[no-any-return]


#: `--env` for commands that take several environments.
EnvsOption = typer.Option(None, "--env", "-e", help="Only this environment (repeatable).")
