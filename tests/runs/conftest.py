"""Run-service tests: the billing tests' seeded database (real PostgreSQL)."""

from tests.billing.conftest import sconn, seeded_url

__all__ = ["sconn", "seeded_url"]
