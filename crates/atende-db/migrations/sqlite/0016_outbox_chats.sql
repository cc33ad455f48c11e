-- 0016 outbox chats (SQLite). Same shape as ../postgres/0016_outbox_chats.sql.

-- The first pending message of every chat (contact + connection), kept by triggers, so the
-- sender's look for due messages reads one index in due order instead of grouping every pending
-- message on every pass. A row exists iff the chat has an outgoing message `queued` or `sending`;
-- `head_id` is the smallest such id; `due_at` is the head's `next_attempt_at` when the head is
-- `queued`, NULL when it is `sending` (the chat waits for that send).
CREATE TABLE outbox_chats (
    tenant_id BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    connection_id BIGINT NOT NULL,
    head_id BIGINT NOT NULL,
    due_at BIGINT NULL,
    PRIMARY KEY (tenant_id, contact_id, connection_id)
);
CREATE INDEX outbox_chats_due ON outbox_chats (due_at, head_id);

INSERT INTO outbox_chats (tenant_id, contact_id, connection_id, head_id, due_at)
SELECT m.tenant_id, m.contact_id, m.connection_id, m.id,
    CASE WHEN m.status = 'queued' THEN m.next_attempt_at END
FROM messages m
WHERE m.id IN (SELECT MIN(id) FROM messages
    WHERE status IN ('queued', 'sending') AND direction = 'out'
    GROUP BY tenant_id, contact_id, connection_id);

-- A new pending message: it is the head only when its chat had none, or only later ones (one
-- writer at a time on SQLite, so the smaller id simply wins).
CREATE TRIGGER outbox_chats_insert AFTER INSERT ON messages
WHEN NEW.direction = 'out' AND NEW.status IN ('queued', 'sending')
BEGIN
    INSERT INTO outbox_chats (tenant_id, contact_id, connection_id, head_id, due_at)
    VALUES (NEW.tenant_id, NEW.contact_id, NEW.connection_id, NEW.id,
        CASE WHEN NEW.status = 'queued' THEN NEW.next_attempt_at END)
    ON CONFLICT (tenant_id, contact_id, connection_id) DO UPDATE
        SET head_id = excluded.head_id, due_at = excluded.due_at
        WHERE excluded.head_id < outbox_chats.head_id;
END;

-- A pending message changed (status, due time, or chat: a contact merge moves messages): the
-- chat's row, and the other chat's when it moved, is computed again from one probe of
-- `messages_outbox_head`.
CREATE TRIGGER outbox_chats_update
AFTER UPDATE OF status, next_attempt_at, direction, tenant_id, contact_id, connection_id
ON messages
WHEN (OLD.direction = 'out' AND OLD.status IN ('queued', 'sending'))
    OR (NEW.direction = 'out' AND NEW.status IN ('queued', 'sending'))
BEGIN
    DELETE FROM outbox_chats WHERE tenant_id = OLD.tenant_id AND contact_id = OLD.contact_id
        AND connection_id = OLD.connection_id;
    INSERT INTO outbox_chats (tenant_id, contact_id, connection_id, head_id, due_at)
    SELECT m.tenant_id, m.contact_id, m.connection_id, m.id,
        CASE WHEN m.status = 'queued' THEN m.next_attempt_at END
    FROM messages m
    WHERE m.tenant_id = OLD.tenant_id AND m.contact_id = OLD.contact_id
        AND m.connection_id = OLD.connection_id
        AND m.status IN ('queued', 'sending') AND m.direction = 'out'
    ORDER BY m.id LIMIT 1;
    DELETE FROM outbox_chats WHERE tenant_id = NEW.tenant_id AND contact_id = NEW.contact_id
        AND connection_id = NEW.connection_id
        AND NOT (NEW.tenant_id = OLD.tenant_id AND NEW.contact_id = OLD.contact_id
            AND NEW.connection_id = OLD.connection_id);
    INSERT INTO outbox_chats (tenant_id, contact_id, connection_id, head_id, due_at)
    SELECT m.tenant_id, m.contact_id, m.connection_id, m.id,
        CASE WHEN m.status = 'queued' THEN m.next_attempt_at END
    FROM messages m
    WHERE m.tenant_id = NEW.tenant_id AND m.contact_id = NEW.contact_id
        AND m.connection_id = NEW.connection_id
        AND m.status IN ('queued', 'sending') AND m.direction = 'out'
        AND NOT (NEW.tenant_id = OLD.tenant_id AND NEW.contact_id = OLD.contact_id
            AND NEW.connection_id = OLD.connection_id)
    ORDER BY m.id LIMIT 1;
END;

-- A pending message deleted (with its ticket, contact or tenant, or on its own).
CREATE TRIGGER outbox_chats_delete AFTER DELETE ON messages
WHEN OLD.direction = 'out' AND OLD.status IN ('queued', 'sending')
BEGIN
    DELETE FROM outbox_chats WHERE tenant_id = OLD.tenant_id AND contact_id = OLD.contact_id
        AND connection_id = OLD.connection_id;
    INSERT INTO outbox_chats (tenant_id, contact_id, connection_id, head_id, due_at)
    SELECT m.tenant_id, m.contact_id, m.connection_id, m.id,
        CASE WHEN m.status = 'queued' THEN m.next_attempt_at END
    FROM messages m
    WHERE m.tenant_id = OLD.tenant_id AND m.contact_id = OLD.contact_id
        AND m.connection_id = OLD.connection_id
        AND m.status IN ('queued', 'sending') AND m.direction = 'out'
    ORDER BY m.id LIMIT 1;
END;
