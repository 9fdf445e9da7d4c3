"""Narrow SELECTs that every prediction runs, executed on the SQLite driver directly.

`Connection.execute` does bookkeeping on every call (an execution context, result metadata,
a cursor wrapper) that costs several times the lookup itself in a local SQLite file: the
key and version reads took a fifth of a `:predict` request's CPU time. A HotSelect compiles
its statement once and, on a SQLite connection, runs it on the driver's connection and
converts each column with its type's result processor, which is what SQLAlchemy does
without the bookkeeping. Elsewhere (Postgres, where a read is a network round trip, or an
ORM session) it is an ordinary execute.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: The bound parameters' names in the order of the SQL's placeholders, with defaults.
    names: tuple[str, ...]
    defaults: dict[str, Any]
    #: (column index, function turning the driver's value into the column type's), for
    #: the columns that need one.
    processors: list[tuple[int, Callable[[Any], Any]]]


class HotSelect:
    """A SELECT of plain columns whose first row comes back as a tuple."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._sqlite: _Compiled | None = None

    def first(
        self, reader: Connection | Session, params: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """The first row for `params`, or None."""
        if isinstance(reader, Connection):
            driver = reader.connection.driver_connection
            if isinstance(driver, sqlite3.Connection):
                return self._first_on_sqlite(driver, reader.dialect, params)
        row = reader.execute(self.statement, params).first()
        return None if row is None else tuple(row)

    def _first_on_sqlite(
        self, driver: sqlite3.Connection, dialect: Dialect, params: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        compiled = self._sqlite or self._compile(dialect)
        values = [params.get(name, compiled.defaults[name]) for name in compiled.names]
        try:
            row = driver.execute(compiled.sql, values).fetchone()
        except sqlite3.OperationalError as exc:  # as Connection.execute would raise it
            raise OperationalError(compiled.sql, values, exc) from exc
        if row is None:
            return None
        if not compiled.processors:
            return tuple(row)
        converted = list(row)
        for i, process in compiled.processors:
            converted[i] = process(converted[i])
        return tuple(converted)

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        for bind in compiled.binds.values():
            if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise TypeError(f"{bind.key!r} needs converting; run this statement normally")
        processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(self.statement.selected_columns):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                processors.append((i, process))
        names = tuple(compiled.positiontup or ())
        self._sqlite = _Compiled(compiled.string, names, dict(compiled.params), processors)
        return self._sqlite
