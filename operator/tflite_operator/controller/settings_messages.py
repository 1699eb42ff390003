"""How a bad operator setting is reported: the variable or flag, what a valid value looks like,
and what the setting is for (settings.py turns pydantic's errors into these).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

# pydantic's wording -> a sentence about the value.
_PROBLEMS = {
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "greater_than_equal": "must be {ge} or more",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be {le} or less",
    "literal_error": "must be {expected}",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
}


def setting_problem(
    error: ErrorDetails, origin: Mapping[str, str], fields: Mapping[str, FieldInfo]
) -> str:
    """`MAX_CONCURRENT_JOBS must be an integer, got 'many' (max concurrent jobs: ...)`: the
    variable or flag, what a valid value looks like, and what the setting is for."""
    loc = error["loc"]
    name = str(loc[0]) if loc else ""
    where = origin.get(name, name or "settings") + "".join(f"[{p}]" for p in loc[1:])
    # `gt=0` on a float field reports 0.0; people write 0.
    ctx = {
        k: int(v) if isinstance(v, float) and v.is_integer() else v
        for k, v in error.get("ctx", {}).items()
    }
    template = _PROBLEMS.get(error["type"])
    if error["type"] == "value_error":
        problem = str(ctx["error"])
    elif template:
        problem = template.format(**ctx)
    else:
        problem = f"is not valid: {error['msg']}"
    got = f", got {error['input']!r}" if isinstance(error["input"], str) else ""
    field = fields.get(name)
    about = f" ({name.replace('_', ' ')}: {field.description})" if field else ""
    return f"{where} {problem}{got}{about}"
