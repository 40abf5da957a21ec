"""The run service, without Ray: a run's creation and its ending.

- :mod:`trendflow.runs.lifecycle` — :func:`end_run`, the one place a run ends (final status and
  billing settlement in one transaction, idempotent), and :func:`reuse_cached`.

The scheduler (:mod:`trendflow.actors`), the API and the jobs call this package; it calls the
repositories and :mod:`trendflow.billing` (a leaf), never Ray.
"""

from trendflow.runs.lifecycle import Ending, end_run, reuse_cached

__all__ = ["Ending", "end_run", "reuse_cached"]
