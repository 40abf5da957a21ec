-- 0004: the heartbeat of a running run. Forward-only.
--
-- The scheduler executing a run refreshes heartbeat_at every
-- runtime.heartbeat_interval_s; its watchdog re-queues (or, past runtime.run_max_attempts,
-- fails) a `running` run whose heartbeat is older than runtime.heartbeat_timeout_s: its
-- execution is gone. Existing rows start without one (the watchdog then reads updated_at).

ALTER TABLE runs ADD COLUMN heartbeat_at TIMESTAMPTZ;

CREATE INDEX runs_running_heartbeat_idx ON runs (heartbeat_at) WHERE status = 'running';
