"""A table of functions by record kind, filled by a decorator.

The projector (how each kind changes the state) and admission (whether each kind
may be written) each keep one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable[..., None])


class KindTable(Generic[F]):
    """Functions registered for record kinds such as ``outcome.course/1``."""

    def __init__(self) -> None:
        """An empty table."""
        self._table: dict[str, F] = {}

    def handles(self, *kinds: str) -> Callable[[F], F]:
        """Register the decorated function for ``kinds``."""

        def register(func: F) -> F:
            for kind in kinds:
                self._table[kind] = func
            return func

        return register

    def get(self, kind: str) -> F | None:
        """The function for ``kind``, or None."""
        return self._table.get(kind)
