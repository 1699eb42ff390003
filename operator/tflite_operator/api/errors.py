"""The failures a conversion can end in: each has an exit code (CLI, Job) and a status reason.

Messages say what went wrong and what to change; the class only picks the code and reason.
"""

from __future__ import annotations


class ConversionError(Exception):
    exit_code = 1
    reason = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SpecError(ConversionError, ValueError):
    exit_code = 2
    reason = "InvalidSpec"


class SourceNotFoundError(ConversionError):
    exit_code = 3
    reason = "SourceNotFound"


class InvalidSourceError(ConversionError):
    """The source exists but is not a loadable SavedModel or .keras file."""

    exit_code = 3
    reason = "InvalidSource"


class ConversionFailedError(ConversionError):
    exit_code = 4
    reason = "ConversionFailed"


class ValidationFailedError(ConversionError):
    exit_code = 5
    reason = "ValidationFailed"


class StorageError(ConversionError):
    exit_code = 6
    reason = "StorageError"


class OutputExistsError(StorageError):
    exit_code = 7
    reason = "OutputExists"


class TerminatedError(ConversionError):
    """SIGTERM: the pod was stopped (deadline reached, Job deleted, node drained)."""

    exit_code = 143
    reason = "Terminated"


# Every failure, listed rather than found through __subclasses__(): a class defined in a
# module that happens not to be imported must not vanish from the operator's reason table.
ALL_ERRORS: tuple[type[ConversionError], ...] = (
    ConversionError,
    SpecError,
    SourceNotFoundError,
    InvalidSourceError,
    ConversionFailedError,
    ValidationFailedError,
    StorageError,
    OutputExistsError,
    TerminatedError,
)
# A retry would fail the same way: bad spec, bad source, unconvertible model, outputs taken.
PERMANENT_ERRORS: tuple[type[ConversionError], ...] = (
    SpecError,
    SourceNotFoundError,
    InvalidSourceError,
    ConversionFailedError,
    ValidationFailedError,
    OutputExistsError,
)
# Status reason -> exit code.
REASON_EXIT_CODES: dict[str, int] = {cls.reason: cls.exit_code for cls in ALL_ERRORS}

EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "internal error (a bug: please report it with the log)",
    2: "bad spec or manifest",
    3: "source model not found or not loadable",
    4: "conversion failed",
    5: "validation failed (inputs could not be compared)",
    6: "storage failure (permissions, network, size cap)",
    7: "outputs already exist and spec.output.overwrite is false",
    143: "stopped by SIGTERM (deadline reached, Job deleted or node drained)",
}
