-- 0001 core (SQLite): tenants, people, auth tokens, instance metadata, settings, audit log, jobs.
-- Times are BIGINT milliseconds since the epoch; booleans are 0/1; JSON is TEXT.
-- Keep this file equivalent to postgres/0001_core.sql. Never edit it once it has landed.

CREATE TABLE tenants (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    suspended INTEGER NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

-- tenant_id is NULL only for platform superadmins, who have no profile inside a tenant.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT REFERENCES tenants (id) ON DELETE CASCADE,
    -- Stored lower-case, unique across the whole platform (login needs no tenant).
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    profile TEXT CHECK (profile IN ('admin', 'supervisor', 'user')),
    is_superadmin INTEGER NOT NULL DEFAULT 0 CHECK (is_superadmin IN (0, 1)),
    business_hours TEXT,
    timezone TEXT,
    locale TEXT NOT NULL DEFAULT 'pt-BR',
    presence TEXT NOT NULL DEFAULT 'offline' CHECK (presence IN ('online', 'paused', 'offline')),
    pause_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT users_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT users_superadmin_check CHECK (
        (is_superadmin = 1 AND tenant_id IS NULL AND profile IS NULL)
        OR (is_superadmin = 0 AND tenant_id IS NOT NULL AND profile IS NOT NULL)
    )
);
-- Platform-wide on purpose (SPEC §1: emails are unique across tenants).
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_tenant_name ON users (tenant_id, name, id);

-- Opaque session and API tokens, stored as the hex SHA-256 of the token.
CREATE TABLE auth_tokens (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id BIGINT REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('session', 'api')),
    name TEXT,
    ip TEXT,
    user_agent TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at BIGINT,
    CONSTRAINT auth_tokens_token_hash_key UNIQUE (token_hash),
    -- A token naming a tenant belongs to a user of that tenant (not checked when tenant_id is NULL).
    CONSTRAINT auth_tokens_tenant_user_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id, kind);

-- Instance-wide values (e.g. the secret-key check value).
CREATE TABLE instance_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Per-tenant overrides of the settings registry (SPEC §10); value is JSON.
CREATE TABLE settings (
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    PRIMARY KEY (tenant_id, key)
);

-- Who did what, when, from which IP. tenant_id NULL = platform action. user_id has no foreign
-- key on purpose: the log is history and keeps the id after the user is deleted.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT REFERENCES tenants (id) ON DELETE CASCADE,
    user_id BIGINT,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT,
    detail TEXT NOT NULL,
    ip TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_log_tenant_created ON audit_log (tenant_id, created_at, id);

-- Background work: due time, lease, attempts, progress.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    payload TEXT NOT NULL,
    progress BIGINT NOT NULL DEFAULT 0,
    total BIGINT NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    due_at BIGINT NOT NULL,
    lease_until BIGINT,
    lease_owner TEXT,
    dedupe_key TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT jobs_tenant_id_id_key UNIQUE (tenant_id, id)
);
-- Platform-wide on purpose: the worker claims due jobs of every tenant.
CREATE INDEX jobs_claim ON jobs (status, due_at);
CREATE INDEX jobs_tenant_created ON jobs (tenant_id, created_at, id);
-- At most one live (queued or running) job per dedupe key; finished ones do not block a new run.
CREATE UNIQUE INDEX jobs_dedupe_key ON jobs (tenant_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running');
