"""The index database: PostgreSQL via asyncpg (embedded server by default), forward-only SQL
migrations, repositories, seed data and the rebuild from manifests.

Services call :func:`connect_and_migrate` on start and close the returned :class:`Database`.
"""

from trendflow.db.pool import Database, connect_and_migrate, open_database

__all__ = ["Database", "connect_and_migrate", "open_database"]
