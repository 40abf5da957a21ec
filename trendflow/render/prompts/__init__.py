"""Versioned prompt files: ``<version>.system.txt``, ``.user.txt``, ``.retry.txt``.

A render records the version and the sha256 of the three files (``prompt_hash``); editing a file
changes the hash, so the render cache never serves a text made with another prompt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from trendflow.errors import ConfigError

PARTS = ("system", "user", "retry")


@dataclass(frozen=True, slots=True)
class Prompt:
    version: str
    system: str
    user: str
    retry: str

    @property
    def hash(self) -> str:
        h = hashlib.sha256()
        for part in (self.version, self.system, self.user, self.retry):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()


def load_prompt(version: str) -> Prompt:
    """The prompt files of ``version`` (:class:`ConfigError` if there are none)."""
    root = resources.files(__name__)
    texts = {}
    for part in PARTS:
        path = root / f"{version}.{part}.txt"
        if not path.is_file():
            raise ConfigError(f"prompt version {version!r} has no {part} file", version=version)
        texts[part] = path.read_text(encoding="utf-8")
    return Prompt(version, texts["system"], texts["user"], texts["retry"])


__all__ = ["Prompt", "load_prompt"]
