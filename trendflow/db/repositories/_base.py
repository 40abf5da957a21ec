"""Shared helpers of the repositories: rows to dataclasses, database errors to domain errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg

from trendflow.errors import Conflict, DatabaseError, InputError, NotFound

T = TypeVar("T")


def row_to(cls: type[T], record: asyncpg.Record) -> T:
    """Build the dataclass ``cls`` from a record with exactly its fields."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in record.items() if k in names})


def columns(cls: type[Any]) -> str:
    """The dataclass's fields as a SELECT list."""
    return ", ".join(f.name for f in dataclasses.fields(cls))


@contextmanager
def domain_errors(what: str) -> Iterator[None]:
    """Turn constraint violations into domain errors that name ``what`` was being written."""
    try:
        yield
    except asyncpg.CheckViolationError as exc:
        raise InputError(
            f"{what}: a value is out of its allowed range ({exc.constraint_name})",
            constraint=exc.constraint_name,
        ) from exc
    except asyncpg.NotNullViolationError as exc:
        raise InputError(f"{what}: {exc.column_name} is required", column=exc.column_name) from exc
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(
            f"{what}: already exists ({exc.constraint_name})", constraint=exc.constraint_name
        ) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(
            f"{what}: refers to a row that does not exist ({exc.constraint_name})",
            constraint=exc.constraint_name,
        ) from exc
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"{what}: {type(exc).__name__}: {exc}") from exc
