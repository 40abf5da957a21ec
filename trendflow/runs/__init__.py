"""The run service, without Ray: a run's creation and its ending.

- :mod:`trendflow.runs.request` — :func:`~trendflow.runs.request.resolve_profile`: a requested
  profile resolved and checked once (config, params, catalog, pinned models, hashes);
- :mod:`trendflow.runs.sources` — the ``runs.source`` JSON;
- :mod:`trendflow.runs.enqueue` — :func:`~trendflow.runs.enqueue.enqueue_run`: the queued row;
- :mod:`trendflow.runs.admission` — :func:`~trendflow.runs.admission.create_billed_run`: a
  user's paid run (idempotency, rate limit, cache, queue, price, reserve) in one transaction;
- :mod:`trendflow.runs.lifecycle` — :func:`end_run`, the one place a run ends (final status and
  billing settlement in one transaction, idempotent), and :func:`reuse_cached`.

The scheduler (:mod:`trendflow.actors`), the API and the jobs call this package; it calls the
repositories and :mod:`trendflow.billing` (a leaf), never Ray.
"""

from trendflow.runs.lifecycle import Ending, end_run, reuse_cached

__all__ = ["Ending", "end_run", "reuse_cached"]
