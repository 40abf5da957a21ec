-- 0002: billing audit trail (docs/billing.md). Forward-only.
--
-- Credit movements are already rows of billing_ledger; this table records the changes that
-- decide future prices: an admin editing a component's pricing, or a calibration run rewriting
-- per-unit costs from measured component times. `before`/`after` are the full pricing rows as
-- JSON (decimal values as strings), so any price a user was shown can be explained later.

CREATE TABLE billing_audit (
    audit_id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action         TEXT NOT NULL CHECK (action IN ('pricing_update', 'calibration')),
    component_name TEXT NOT NULL CHECK (component_name ~ '^[a-z][a-z0-9_]{0,63}$'),
    actor          TEXT NOT NULL CHECK (length(actor) > 0),
    reason         TEXT NOT NULL CHECK (length(reason) > 0),
    before         JSONB,  -- NULL when the component had no pricing row yet
    after          JSONB NOT NULL,
    details        JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object'),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX billing_audit_component_idx ON billing_audit (component_name, created_at);

-- Ledger pages for /api/me are read newest first by entry id.
CREATE INDEX billing_ledger_user_entry_idx ON billing_ledger (user_id, entry_id DESC);
