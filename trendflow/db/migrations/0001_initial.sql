-- 0001: the index schema (DESIGN.md §7). Forward-only: never edit this file once released;
-- change the schema with a new numbered file.
--
-- Credits are exact NUMERIC. A user's `balance` is what they own; `reserved` is the part held
-- for runs in flight, so the spendable amount is balance - reserved, and the CHECK
-- `reserved <= balance` is what makes concurrent reservations unable to overdraw.

CREATE TABLE users (
    user_id       UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    display_name  TEXT,
    role          TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    subscription  TEXT NOT NULL DEFAULT 'free' CHECK (subscription IN ('free', 'premium')),
    balance       NUMERIC(20, 6) NOT NULL DEFAULT 0 CHECK (balance >= 0),
    reserved      NUMERIC(20, 6) NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_reserved_within_balance CHECK (reserved <= balance)
);

CREATE TABLE api_tokens (
    token_id      UUID PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    token_sha256  TEXT NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    name          TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

CREATE TABLE videos (
    platform_id   TEXT NOT NULL CHECK (platform_id ~ '^[a-z][a-z0-9_]{0,31}$'),
    video_id      TEXT NOT NULL CHECK (video_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    title         TEXT,
    description   TEXT,
    duration_s    DOUBLE PRECISION CHECK (duration_s >= 0),
    fps           DOUBLE PRECISION CHECK (fps > 0),
    width         INTEGER CHECK (width > 0),
    height        INTEGER CHECK (height > 0),
    has_audio     BOOLEAN,
    source        JSONB NOT NULL DEFAULT '{}'::jsonb,
    preprocessing JSONB NOT NULL DEFAULT '[]'::jsonb,
    metadata      JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (platform_id, video_id)
);
CREATE INDEX videos_video_id_idx ON videos (video_id);

CREATE TABLE analysis_profiles (
    profile_id     TEXT PRIMARY KEY CHECK (profile_id ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    user_id        UUID REFERENCES users (user_id) ON DELETE CASCADE,  -- NULL: built-in
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    is_public      BOOLEAN NOT NULL DEFAULT FALSE,
    sampling       JSONB NOT NULL DEFAULT '{}'::jsonb,
    render         JSONB NOT NULL DEFAULT '{}'::jsonb,
    cache_ttl_days INTEGER NOT NULL DEFAULT 3 CHECK (cache_ttl_days >= 0),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    archived_at    TIMESTAMPTZ
);
CREATE INDEX analysis_profiles_user_idx ON analysis_profiles (user_id);

CREATE TABLE profile_components (
    profile_id     TEXT NOT NULL REFERENCES analysis_profiles (profile_id) ON DELETE CASCADE,
    component_name TEXT NOT NULL CHECK (component_name ~ '^[a-z][a-z0-9_]{0,63}$'),
    enabled        BOOLEAN NOT NULL DEFAULT TRUE,
    required       BOOLEAN NOT NULL DEFAULT TRUE,
    params         JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(params) = 'object'),
    PRIMARY KEY (profile_id, component_name)
);

CREATE TABLE profile_model_mapping (
    profile_id     TEXT NOT NULL,
    component_name TEXT NOT NULL,
    model_name     TEXT NOT NULL CHECK (model_name ~ '^[a-z][a-z0-9_]{0,63}$'),
    model_version  TEXT NOT NULL CHECK (model_version ~ '^[0-9]+$'),
    weights_digest TEXT,
    engine         TEXT NOT NULL DEFAULT 'triton' CHECK (engine IN ('triton', 'in_process')),
    precision      TEXT NOT NULL DEFAULT 'fp32' CHECK (precision IN ('fp32', 'fp16', 'int8')),
    device_policy  TEXT NOT NULL DEFAULT 'auto' CHECK (device_policy IN ('auto', 'cpu', 'gpu')),
    PRIMARY KEY (profile_id, component_name, model_name),
    FOREIGN KEY (profile_id, component_name)
        REFERENCES profile_components (profile_id, component_name) ON DELETE CASCADE
);

-- Global per component: what one task needs (scheduler) and what it costs (billing).
CREATE TABLE component_resource_requirements (
    component_name      TEXT PRIMARY KEY CHECK (component_name ~ '^[a-z][a-z0-9_]{0,63}$'),
    engine              TEXT NOT NULL CHECK (engine IN ('cpu', 'gpu')),
    memory_per_task     INTEGER NOT NULL CHECK (memory_per_task > 0),        -- MB of RAM
    gpu_memory_per_task INTEGER NOT NULL DEFAULT 0 CHECK (gpu_memory_per_task >= 0),  -- MB
    cpu_cores_per_task  NUMERIC(6, 2) NOT NULL CHECK (cpu_cores_per_task > 0),
    source              TEXT NOT NULL,  -- how the figures were obtained (measured by / estimate)
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT crr_gpu_engine_has_gpu_memory CHECK (engine = 'gpu' OR gpu_memory_per_task = 0)
);

-- price = (base_cost + cpu_s * cpu_cost_per_s + gpu_s * gpu_cost_per_s)
--         * resolution_factor * duration_factor * (1 + markup)
-- where cpu_s = units * cpu_s_per_unit (likewise gpu_s) and `unit` says what is counted.
CREATE TABLE component_pricing (
    component_name         TEXT PRIMARY KEY CHECK (component_name ~ '^[a-z][a-z0-9_]{0,63}$'),
    unit                   TEXT NOT NULL CHECK (unit IN ('frame', 'audio_second', 'run')),
    base_cost              NUMERIC(20, 6) NOT NULL CHECK (base_cost >= 0),
    cpu_cost_per_s         NUMERIC(20, 6) NOT NULL CHECK (cpu_cost_per_s >= 0),
    gpu_cost_per_s         NUMERIC(20, 6) NOT NULL CHECK (gpu_cost_per_s >= 0),
    cpu_s_per_unit         NUMERIC(20, 9) NOT NULL CHECK (cpu_s_per_unit >= 0),
    gpu_s_per_unit         NUMERIC(20, 9) NOT NULL CHECK (gpu_s_per_unit >= 0),
    -- {"<max source height>": factor, ...}: the first entry whose height >= the video's applies
    resolution_factors     JSONB NOT NULL CHECK (jsonb_typeof(resolution_factors) = 'object'),
    duration_factor_mode   TEXT NOT NULL CHECK (duration_factor_mode IN ('flat', 'linear', 'tiered')),
    duration_factor_params JSONB NOT NULL DEFAULT '{}'::jsonb,
    markup                 NUMERIC(10, 6) NOT NULL CHECK (markup >= 0),
    cache_price            NUMERIC(20, 6) NOT NULL CHECK (cache_price >= 0),
    source                 TEXT NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE runs (
    run_id                  UUID PRIMARY KEY,
    platform_id             TEXT NOT NULL,
    video_id                TEXT NOT NULL,
    user_id                 UUID REFERENCES users (user_id) ON DELETE SET NULL,
    profile_id              TEXT NOT NULL,  -- no FK: runs outlive profile edits; config is pinned
    config_hash             TEXT NOT NULL CHECK (config_hash ~ '^[0-9a-f]{64}$'),
    sampling_policy_version TEXT NOT NULL,
    dataprocessor_version   TEXT NOT NULL,
    model_signature         TEXT NOT NULL,
    model_mapping           JSONB NOT NULL DEFAULT '{}'::jsonb,
    profile_config          JSONB NOT NULL DEFAULT '{}'::jsonb,
    source                  JSONB NOT NULL DEFAULT '{}'::jsonb,
    status                  TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'ok', 'error', 'cancelled')),
    stage                   TEXT,
    error                   JSONB,  -- {"code", "message", ...} when status = 'error'
    warnings                JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(warnings) = 'array'),
    reused_from_run_id      UUID REFERENCES runs (run_id) ON DELETE SET NULL,
    idempotency_key         TEXT,
    callback_url            TEXT,
    worker_id               TEXT,
    attempts                INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at              TIMESTAMPTZ,
    finished_at             TIMESTAMPTZ,
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (platform_id, video_id) REFERENCES videos (platform_id, video_id) ON DELETE CASCADE,
    CONSTRAINT runs_idempotency_key_per_user UNIQUE (user_id, idempotency_key)
);
CREATE INDEX runs_queue_idx ON runs (status, created_at);
CREATE INDEX runs_cache_idx ON runs (video_id, config_hash, model_signature, finished_at);
CREATE INDEX runs_user_idx ON runs (user_id, created_at);
CREATE INDEX runs_platform_video_idx ON runs (platform_id, video_id);

CREATE TABLE run_components (
    run_id           UUID NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    component_name   TEXT NOT NULL CHECK (component_name ~ '^[a-z][a-z0-9_]{0,63}$'),
    status           TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'ok', 'empty', 'error', 'skipped')),
    required         BOOLEAN NOT NULL DEFAULT TRUE,
    schema_version   INTEGER CHECK (schema_version >= 1),
    producer_version TEXT,
    model            TEXT,  -- resolved "name:version" for model-backed components
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    duration_ms      BIGINT CHECK (duration_ms >= 0),
    device_used      TEXT,
    error            JSONB,  -- {"code", "message"} when status = 'error'
    empty_reason     TEXT CHECK (empty_reason IN (
        'audio_missing_or_extract_failed', 'no_faces_in_video', 'no_text_available',
        'ocr_disabled_by_policy', 'comments_missing_or_disabled', 'video_too_short',
        'video_too_long', 'dependency_missing')),
    notes            JSONB NOT NULL DEFAULT '[]'::jsonb,
    peak_ram_mb      DOUBLE PRECISION CHECK (peak_ram_mb >= 0),
    gpu_memory_mb    DOUBLE PRECISION CHECK (gpu_memory_mb >= 0),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, component_name),
    CONSTRAINT run_components_empty_has_reason
        CHECK ((status = 'empty') = (empty_reason IS NOT NULL))
);

CREATE TABLE artifacts (
    key            TEXT PRIMARY KEY,
    run_id         UUID NOT NULL,
    component_name TEXT NOT NULL,
    size_bytes     BIGINT NOT NULL CHECK (size_bytes >= 0),
    sha256         TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (run_id, component_name)
        REFERENCES run_components (run_id, component_name) ON DELETE CASCADE
);
CREATE INDEX artifacts_run_idx ON artifacts (run_id, component_name);

CREATE TABLE render_cache (
    platform_id       TEXT NOT NULL,
    video_id          TEXT NOT NULL,
    run_id            UUID NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    render_profile_id TEXT NOT NULL,
    llm_model         TEXT NOT NULL,
    prompt_hash       TEXT NOT NULL,
    locale            TEXT NOT NULL,
    engine            TEXT NOT NULL CHECK (engine IN ('llm', 'template')),
    prompt_version    TEXT NOT NULL,
    text              TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, run_id, render_profile_id, llm_model, prompt_hash, locale),
    FOREIGN KEY (platform_id, video_id) REFERENCES videos (platform_id, video_id) ON DELETE CASCADE
);

-- Every credit movement. `amount` is always positive; `kind` says which way it moves.
CREATE TABLE billing_ledger (
    entry_id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         UUID NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    run_id          UUID REFERENCES runs (run_id) ON DELETE SET NULL,
    component_name  TEXT,
    kind            TEXT NOT NULL
        CHECK (kind IN ('topup', 'reserve', 'charge', 'release', 'refund', 'adjustment')),
    amount          NUMERIC(20, 6) NOT NULL CHECK (amount >= 0),
    balance_after   NUMERIC(20, 6) NOT NULL CHECK (balance_after >= 0),
    reserved_after  NUMERIC(20, 6) NOT NULL CHECK (reserved_after >= 0),
    idempotency_key TEXT UNIQUE,  -- makes settlement safe to repeat
    note            TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX billing_ledger_user_idx ON billing_ledger (user_id, created_at);
CREATE INDEX billing_ledger_run_idx ON billing_ledger (run_id);
