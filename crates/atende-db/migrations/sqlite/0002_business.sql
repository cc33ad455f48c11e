-- Business data (SPEC §2): queues, contacts, connections, catalogues, tickets, messages and the
-- raw inbound log. Same shape as ../postgres/0002_business.sql.
--
-- Rules: every table has tenant_id; every index starts with it (except the sender's cross-tenant
-- claim index on messages); referenced tables have UNIQUE (tenant_id, id) so references are
-- composite foreign keys and the database refuses a reference into another tenant.
-- Times are BIGINT milliseconds since the epoch; booleans 0/1; JSON as TEXT.
--
-- Nullable references that must survive the deletion of their target (a ticket's queue or owner,
-- a connection's default flow…) cannot use ON DELETE SET NULL on a composite key here: SQLite
-- would null tenant_id too. The BEFORE DELETE triggers at the end clear them instead (PostgreSQL
-- uses ON DELETE SET NULL (column)).

CREATE TABLE queues (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    color TEXT NOT NULL,
    greeting TEXT NOT NULL DEFAULT '',
    absence_message TEXT NOT NULL DEFAULT '',
    business_hours TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE user_queues (
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL,
    queue_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, queue_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_queues_queue ON user_queues (tenant_id, queue_id);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    color TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE demands (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE flows (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
    graph TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX flows_name ON flows (tenant_id, name);

-- Every graph a flow ever had, so a running bot session keeps stepping through its own version.
CREATE TABLE flow_versions (
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    flow_id BIGINT NOT NULL,
    version BIGINT NOT NULL,
    graph TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, flow_id, version),
    FOREIGN KEY (tenant_id, flow_id) REFERENCES flows (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    name_source TEXT NOT NULL,
    phone TEXT NULL,
    email TEXT NULL,
    avatar_url TEXT NULL,
    blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    is_group INTEGER NOT NULL DEFAULT 0 CHECK (is_group IN (0, 1)),
    custom_fields TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX contacts_name ON contacts (tenant_id, name);
CREATE INDEX contacts_phone ON contacts (tenant_id, phone);

CREATE TABLE contact_identities (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    contact_id BIGINT NOT NULL,
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, channel, external_id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_identities_contact ON contact_identities (tenant_id, contact_id);

-- Wallet (carteira): the contact's owners, in order.
CREATE TABLE wallets (
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    contact_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (contact_id, user_id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX wallets_user ON wallets (tenant_id, user_id);

CREATE TABLE contact_tags (
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    contact_id BIGINT NOT NULL,
    tag_id BIGINT NOT NULL,
    PRIMARY KEY (contact_id, tag_id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, tag_id) REFERENCES tags (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_tags_tag ON contact_tags (tenant_id, tag_id);

CREATE TABLE connections (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'disconnected',
    default_queue_id BIGINT NULL,
    default_flow_id BIGINT NULL,
    public_key TEXT NULL UNIQUE,
    -- Encrypted by the caller (XChaCha20-Poly1305); never returned by the API.
    credentials BLOB NULL,
    send_delay_min_ms BIGINT NULL,
    send_delay_max_ms BIGINT NULL,
    cadence_enabled INTEGER NULL CHECK (cadence_enabled IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, default_queue_id) REFERENCES queues (tenant_id, id),
    FOREIGN KEY (tenant_id, default_flow_id) REFERENCES flows (tenant_id, id)
);

CREATE TABLE templates (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL,
    components TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, connection_id, name, language),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE quick_replies (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    shortcut TEXT NOT NULL,
    body TEXT NOT NULL,
    user_id BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, shortcut),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX quick_replies_user ON quick_replies (tenant_id, user_id);

-- At most one non-closed ticket per (contact, connection): tickets_one_open below.
-- current_cycle_id has no foreign key (tickets and cycles would reference each other); only this
-- crate writes it, inside the transaction that creates the cycle.
CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    contact_id BIGINT NOT NULL,
    connection_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    owner_id BIGINT NULL,
    queue_id BIGINT NULL,
    is_group INTEGER NOT NULL DEFAULT 0 CHECK (is_group IN (0, 1)),
    -- yyyymmdd + id, set right after the insert (NULL only inside that transaction).
    protocol TEXT NULL,
    bot_flow_id BIGINT NULL,
    bot_flow_version BIGINT NULL,
    bot_node TEXT NULL,
    bot_retries BIGINT NOT NULL DEFAULT 0,
    bot_last_at BIGINT NULL,
    integration_session TEXT NULL,
    wallet_overflowed INTEGER NOT NULL DEFAULT 0 CHECK (wallet_overflowed IN (0, 1)),
    unread BIGINT NOT NULL DEFAULT 0,
    last_message TEXT NOT NULL DEFAULT '',
    last_message_at BIGINT NULL,
    last_inbound_at BIGINT NULL,
    out_of_hours_sent BIGINT NOT NULL DEFAULT 0,
    pause_reason TEXT NULL,
    signature_disabled INTEGER NOT NULL DEFAULT 0 CHECK (signature_disabled IN (0, 1)),
    current_cycle_id BIGINT NULL,
    closed_at BIGINT NULL,
    auto_resolve_due_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, protocol),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    -- A connection with tickets cannot be deleted (its history would go with it).
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, id),
    FOREIGN KEY (tenant_id, bot_flow_id) REFERENCES flows (tenant_id, id)
);
CREATE UNIQUE INDEX tickets_one_open ON tickets (tenant_id, contact_id, connection_id)
    WHERE status <> 'closed';
CREATE INDEX tickets_contact ON tickets (tenant_id, contact_id, connection_id, id);
-- Ticket lists (ARCHITECTURE "Traps"): one index per branch of the union, ending in the sort key.
CREATE INDEX tickets_queue_inbound ON tickets (tenant_id, status, queue_id, last_inbound_at, id);
CREATE INDEX tickets_owner_inbound ON tickets (tenant_id, status, owner_id, last_inbound_at, id);
CREATE INDEX tickets_queue_updated ON tickets (tenant_id, status, queue_id, updated_at, id);
CREATE INDEX tickets_owner_updated ON tickets (tenant_id, status, owner_id, updated_at, id);
CREATE INDEX tickets_unread ON tickets (tenant_id, status, queue_id) WHERE unread > 0;

-- One attendance episode of a ticket: opened → accepted → closed.
CREATE TABLE ticket_cycles (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    ticket_id BIGINT NOT NULL,
    opened_at BIGINT NOT NULL,
    accepted_at BIGINT NULL,
    first_response_at BIGINT NULL,
    closed_at BIGINT NULL,
    owner_id BIGINT NULL,
    queue_id BIGINT NULL,
    demand_id BIGINT NULL,
    closing_note TEXT NULL,
    closed_by BIGINT NULL,
    close_reason TEXT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, id),
    FOREIGN KEY (tenant_id, demand_id) REFERENCES demands (tenant_id, id),
    FOREIGN KEY (tenant_id, closed_by) REFERENCES users (tenant_id, id)
);
CREATE INDEX ticket_cycles_ticket ON ticket_cycles (tenant_id, ticket_id, id);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    ticket_id BIGINT NOT NULL,
    connection_id BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    direction TEXT NOT NULL,
    author TEXT NOT NULL,
    author_user_id BIGINT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    media_path TEXT NULL,
    media_mime TEXT NULL,
    media_size BIGINT NULL,
    media_sha256 TEXT NULL,
    media_state TEXT NULL,
    provider_id TEXT NULL,
    quoted_id BIGINT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT NULL,
    outcome_unknown INTEGER NOT NULL DEFAULT 0 CHECK (outcome_unknown IN (0, 1)),
    idempotency_key TEXT NULL,
    lane TEXT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NULL,
    queue_stamp BIGINT NULL,
    imported INTEGER NOT NULL DEFAULT 0 CHECK (imported IN (0, 1)),
    provider_timestamp BIGINT NULL,
    sent_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, author_user_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, quoted_id) REFERENCES messages (tenant_id, id),
    FOREIGN KEY (tenant_id, queue_stamp) REFERENCES queues (tenant_id, id)
);
CREATE UNIQUE INDEX messages_provider ON messages (tenant_id, connection_id, provider_id)
    WHERE provider_id IS NOT NULL;
CREATE UNIQUE INDEX messages_idempotency ON messages (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_ticket ON messages (tenant_id, ticket_id, sent_at, id);
CREATE INDEX messages_contact ON messages (tenant_id, contact_id, connection_id, sent_at, id);
CREATE INDEX messages_quoted ON messages (tenant_id, quoted_id) WHERE quoted_id IS NOT NULL;
-- The outbound sender claims due messages of every tenant: the one index not led by tenant_id.
CREATE INDEX messages_outbox ON messages (status, next_attempt_at)
    WHERE status IN ('queued', 'sending');

-- Raw log of every authentic provider delivery (SPEC §4).
CREATE TABLE inbound_events (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id BIGINT NOT NULL,
    provider_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    raw_body TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'received',
    reason TEXT NULL,
    processed_at BIGINT NULL,
    UNIQUE (tenant_id, connection_id, provider_id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX inbound_events_outcome ON inbound_events (tenant_id, outcome, received_at);

-- ON DELETE SET NULL for nullable composite references (see the header).
CREATE TRIGGER queues_clear_references BEFORE DELETE ON queues
BEGIN
    UPDATE connections SET default_queue_id = NULL
        WHERE tenant_id = OLD.tenant_id AND default_queue_id = OLD.id;
    UPDATE tickets SET queue_id = NULL WHERE tenant_id = OLD.tenant_id AND queue_id = OLD.id;
    UPDATE ticket_cycles SET queue_id = NULL WHERE tenant_id = OLD.tenant_id AND queue_id = OLD.id;
    UPDATE messages SET queue_stamp = NULL WHERE tenant_id = OLD.tenant_id AND queue_stamp = OLD.id;
END;

CREATE TRIGGER flows_clear_references BEFORE DELETE ON flows
BEGIN
    UPDATE connections SET default_flow_id = NULL
        WHERE tenant_id = OLD.tenant_id AND default_flow_id = OLD.id;
    UPDATE tickets SET bot_flow_id = NULL WHERE tenant_id = OLD.tenant_id AND bot_flow_id = OLD.id;
END;

CREATE TRIGGER demands_clear_references BEFORE DELETE ON demands
BEGIN
    UPDATE ticket_cycles SET demand_id = NULL WHERE tenant_id = OLD.tenant_id AND demand_id = OLD.id;
END;

CREATE TRIGGER users_clear_business_references BEFORE DELETE ON users
WHEN OLD.tenant_id IS NOT NULL
BEGIN
    UPDATE tickets SET owner_id = NULL WHERE tenant_id = OLD.tenant_id AND owner_id = OLD.id;
    UPDATE ticket_cycles SET owner_id = NULL WHERE tenant_id = OLD.tenant_id AND owner_id = OLD.id;
    UPDATE ticket_cycles SET closed_by = NULL WHERE tenant_id = OLD.tenant_id AND closed_by = OLD.id;
    UPDATE messages SET author_user_id = NULL
        WHERE tenant_id = OLD.tenant_id AND author_user_id = OLD.id;
END;

CREATE TRIGGER messages_clear_quotes BEFORE DELETE ON messages
BEGIN
    UPDATE messages SET quoted_id = NULL WHERE tenant_id = OLD.tenant_id AND quoted_id = OLD.id;
END;
