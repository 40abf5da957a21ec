"""A short-lived Triton server for offline work (building the default predictor, featurizing).

Featurizing labelled videos embeds their text through the served ``text_embedder`` — the model a
run calls, not a second implementation — so a build starts the real server on loopback for the
models it needs (a temporary repository of links to the built folders) and stops it after.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from trendflow.errors import ConfigError
from trendflow.triton.client import TritonClient
from trendflow.triton.server import free_port, start_server, stop_server


@contextmanager
def temporary_server(repository: Path, models: Sequence[str]) -> Iterator[TritonClient]:
    """A loopback Triton serving only ``models`` of ``repository``; its client while it runs."""
    with tempfile.TemporaryDirectory(prefix="trendflow-triton-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        for name in models:
            src = (repository / name).resolve()
            if not (src / "config.pbtxt").is_file():
                raise ConfigError(f"{src} is not a built model folder (run `trendflow models "
                                  f"build --model {name}`)", model=name)
            (repo / name).symlink_to(src, target_is_directory=True)
        work = Path(tmp) / "work"
        info = start_server(repo, work, http_port=free_port(), grpc_port=free_port(),
                            metrics_port=free_port())
        client = TritonClient(info.grpc_url)
        try:
            yield client
        finally:
            client.close()
            stop_server(work)


__all__ = ["temporary_server"]
