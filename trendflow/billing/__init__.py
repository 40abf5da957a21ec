"""Billing in credits (1 RUB = 1 credit): prices, estimates, reservations, settlement, limits.

- :mod:`.pricing` — the per-component price formula and admin price changes (audited);
- :mod:`.estimate` — a run's price and ETA before it starts (and at creation);
- :mod:`.ledger` — reserve → settle → release, top-ups, balances, ledger pages;
- :mod:`.limits` — runs per hour by subscription;
- :mod:`.admission` — creating a paid run (limit, queue, price, reserve) in one transaction;
- :mod:`.audit` — ``trendflow billing audit``: the ledger invariants.

See docs/billing.md.
"""
