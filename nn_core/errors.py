"""Errors raised by nn_core. Each names the field at fault so callers can report it as-is."""

from __future__ import annotations

from collections.abc import Iterable


class NNCoreError(Exception):
    """Base class for every error nn_core raises on purpose."""


class SpecError(NNCoreError, ValueError):
    """An invalid model spec, hyperparameter or stored state.

    `field` is a path such as ``layers[1].activation``; `allowed` lists the accepted values
    when the set is finite, so a client can show them without parsing the message.
    """

    def __init__(self, field: str, message: str, allowed: Iterable[str] | None = None) -> None:
        self.field = field
        self.reason = message
        self.allowed = sorted(allowed) if allowed is not None else None
        text = f"{field}: {message}"
        if self.allowed is not None:
            text += f" (allowed: {', '.join(self.allowed)})"
        self.message = text
        super().__init__(text)

    def within(self, prefix: str) -> SpecError:
        """The same error one level down: a constructor names its parameter (``units``), the
        spec entry it was built from puts it under its own path (``layers[0].units``)."""
        field = f"{prefix}.{self.field}" if prefix and self.field else prefix or self.field
        return SpecError(field, self.reason, self.allowed)


class DataError(NNCoreError, ValueError):
    """Training or prediction data that does not fit the model (shape, dtype, labels, NaN)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = f"{field}: {message}"
        super().__init__(self.message)
