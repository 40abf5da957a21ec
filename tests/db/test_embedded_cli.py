"""The default set-up: no URL → an embedded server in the data dir, started, reused, stopped."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.postgres import pg_scratch_dir
from trendflow.cli import main
from trendflow.db.embedded import is_running
from trendflow.settings import get_settings


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = pg_scratch_dir("trendflow-test-data-")
    monkeypatch.setenv("TRENDFLOW_DATA_DIR", str(root))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_embedded_server_is_started_reused_and_stopped(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pgdata = data_dir / "postgres"
    assert main(["db", "seed"]) == 0
    assert '"profiles": 3' in capsys.readouterr().out
    assert (pgdata / "PG_VERSION").exists()
    assert not is_running(pgdata), "the server outlived the command that started it"

    # a later command finds the same data: migrations applied, nothing left to seed
    assert main(["db", "status"]) == 0
    assert "0001_initial: 2" in capsys.readouterr().out
    assert main(["db", "seed"]) == 0
    assert '"inserted": {}' in capsys.readouterr().out

    # an operator-started server stays up across commands until `db stop`
    assert main(["db", "start"]) == 0
    capsys.readouterr()
    try:
        assert main(["db", "migrate"]) == 0
        assert "up to date" in capsys.readouterr().out
        assert is_running(pgdata)
        assert main(["db", "url"]) == 0
        assert capsys.readouterr().out.startswith("postgresql://postgres:@/trendflow?host=")
    finally:
        assert main(["db", "stop"]) == 0
    assert not is_running(pgdata)
    assert main(["db", "url"]) == 2  # not running: a clear error, not a dead URL
    assert "db start" in capsys.readouterr().err


def test_url_setting_is_used_and_password_hidden(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRENDFLOW_DATABASE_URL", "postgresql://tf:s3cret@127.0.0.1:1/x")
    assert main(["db", "url"]) == 0
    assert capsys.readouterr().out.strip() == "postgresql://tf:***@127.0.0.1:1/x"
    assert main(["db", "migrate"]) == 2  # nothing listens there: a clear error with the place
    err = capsys.readouterr().err
    assert "database_error" in err and "127.0.0.1:1" in err and "s3cret" not in err
    monkeypatch.setenv("TRENDFLOW_DATABASE_URL", db_url)
    get_settings.cache_clear()
    assert main(["db", "migrate"]) == 0
