"""Command-line flags derived from a settings model: one option per field that carries a `Flag`
in its annotation, its help made of the field's description, default and environment variable.

Why not pydantic-settings' own CLI source: it names each flag after the field's alias, and the
alias here is the environment variable the chart sets (`--WATCH_NAMESPACES`, not
`-n/--namespace`); it has no way to spell a flag and a variable differently.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class Flag:
    """How a setting is spelled on the command line (in `Annotated[type, Flag(...)]`)."""

    name: str
    short: str | None = None
    metavar: str | None = None
    # Given several times, the flag makes a list.
    repeat: bool = False
    # The list adds to the environment's value (a mapping) instead of replacing it.
    merge: bool = False


def flag_of(field: FieldInfo) -> Flag | None:
    return next((m for m in field.metadata if isinstance(m, Flag)), None)


def _shown(default: Any) -> str | None:
    if default is None or default is False or default in ((), {}, ""):
        return None
    if isinstance(default, dict | tuple | list):
        return json.dumps(default)
    return str(default)


def _help(field: FieldInfo, flag: Flag) -> str:
    parts = [field.description or ""]
    if flag.merge:
        parts.append("repeatable, adds to the variable's pairs")
    elif flag.repeat:
        parts.append("repeatable")
    if (default := _shown(field.default)) is not None:
        parts.append(f"default {default}")
    # argparse %-formats help strings.
    return ("; ".join(p for p in parts if p) + f" [{field.validation_alias}]").replace("%", "%%")


def _metavar(field: FieldInfo, flag: Flag) -> str | None:
    if flag.metavar:
        return flag.metavar
    if get_origin(field.annotation) is Literal:
        return "{" + ",".join(get_args(field.annotation)) + "}"
    return {int: "N", float: "SECONDS"}.get(field.annotation, "VALUE")  # type: ignore[arg-type]


def build_parser(model: type[BaseModel], prog: str, description: str) -> argparse.ArgumentParser:
    env_only = [
        f"{f.validation_alias} ({f.description}; default {_shown(f.default)})"
        for f in model.model_fields.values()
        if flag_of(f) is None
    ]
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="Only in the environment: " + "; ".join(env_only) if env_only else None,
    )
    for name, field in model.model_fields.items():
        flag = flag_of(field)
        if flag is None:
            continue
        names = [flag.short, flag.name] if flag.short else [flag.name]
        # SUPPRESS: a flag not given leaves no trace, so the environment's value stands.
        common = {"dest": name, "default": argparse.SUPPRESS, "help": _help(field, flag)}
        if field.annotation is bool:
            parser.add_argument(*names, action="store_true", **common)
        else:
            action = "append" if flag.repeat else "store"
            parser.add_argument(*names, action=action, metavar=_metavar(field, flag), **common)
    return parser


def parse_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> dict[str, Any]:
    """The flags given, by field name, as text (a list for a repeated flag; True for a switch).
    argparse exits with the usage on an unknown flag, as any command does."""
    return vars(parser.parse_args(list(argv)))
