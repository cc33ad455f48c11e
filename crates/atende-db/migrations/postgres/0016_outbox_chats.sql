-- 0016 outbox chats (PostgreSQL). Same shape as ../sqlite/0016_outbox_chats.sql.

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

-- Computes the rows of the chats named by the three arrays (distinct keys) again from their
-- messages, one probe of `messages_outbox_head` per chat.
--
-- Concurrency (READ COMMITTED): whoever changes a chat's pending messages locks the chat's row
-- before reading its messages, in key order (so statements over many chats cannot deadlock
-- each other), and each statement below takes a fresh snapshot: the last transaction to hold the
-- lock sees every change committed by the ones before it. Rows that did not exist when locking
-- are inserted with ON CONFLICT DO NOTHING; when another transaction inserted one meanwhile, the
-- whole computation runs again, now holding that row's lock, instead of overwriting it with what
-- a snapshot without the other's messages says.
CREATE FUNCTION outbox_chats_refresh(ts BIGINT[], cs BIGINT[], ns BIGINT[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lt BIGINT[];
    lc BIGINT[];
    ln BIGINT[];
    wanted BIGINT;
    added BIGINT;
BEGIN
    LOOP
        SELECT COALESCE(array_agg(s.tenant_id), '{}'), COALESCE(array_agg(s.contact_id), '{}'),
            COALESCE(array_agg(s.connection_id), '{}')
        INTO lt, lc, ln
        FROM (SELECT o.tenant_id, o.contact_id, o.connection_id
            FROM outbox_chats o
            JOIN unnest(ts, cs, ns) AS k (t, c, n)
                ON o.tenant_id = k.t AND o.contact_id = k.c AND o.connection_id = k.n
            ORDER BY o.tenant_id, o.contact_id, o.connection_id
            FOR UPDATE OF o) s;
        WITH probe AS (
            SELECT k.t, k.c, k.n, h.id, h.due,
                EXISTS (SELECT 1 FROM unnest(lt, lc, ln) AS l (t, c, n)
                    WHERE l.t = k.t AND l.c = k.c AND l.n = k.n) AS locked
            FROM unnest(ts, cs, ns) AS k (t, c, n)
            LEFT JOIN LATERAL (
                SELECT m.id, CASE WHEN m.status = 'queued' THEN m.next_attempt_at END AS due
                FROM messages m
                WHERE m.tenant_id = k.t AND m.contact_id = k.c AND m.connection_id = k.n
                    AND m.status IN ('queued', 'sending') AND m.direction = 'out'
                ORDER BY m.id LIMIT 1) h ON TRUE
        ),
        gone AS (
            DELETE FROM outbox_chats o USING probe p
            WHERE p.locked AND p.id IS NULL
                AND o.tenant_id = p.t AND o.contact_id = p.c AND o.connection_id = p.n
        ),
        moved AS (
            UPDATE outbox_chats o SET head_id = p.id, due_at = p.due
            FROM probe p
            WHERE p.locked AND p.id IS NOT NULL
                AND o.tenant_id = p.t AND o.contact_id = p.c AND o.connection_id = p.n
                AND (o.head_id <> p.id OR o.due_at IS DISTINCT FROM p.due)
        ),
        fresh AS (
            INSERT INTO outbox_chats (tenant_id, contact_id, connection_id, head_id, due_at)
            SELECT p.t, p.c, p.n, p.id, p.due FROM probe p
            WHERE NOT p.locked AND p.id IS NOT NULL
            ORDER BY p.t, p.c, p.n
            ON CONFLICT (tenant_id, contact_id, connection_id) DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM probe p WHERE NOT p.locked AND p.id IS NOT NULL),
            (SELECT count(*) FROM fresh)
        INTO wanted, added;
        EXIT WHEN added = wanted;
    END LOOP;
END
$$;

-- A new pending message. Deferred to the commit, so the row lock is the transaction's last one
-- (a reply locks its ticket first, like every other writer of a ticket and its messages). When
-- its chat's head is an earlier message nothing changes: the lock only makes a concurrent
-- recompute that cannot see this message yet wait for it, or run before it.
CREATE FUNCTION outbox_chats_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head BIGINT;
BEGIN
    SELECT o.head_id INTO head FROM outbox_chats o
    WHERE o.tenant_id = NEW.tenant_id AND o.contact_id = NEW.contact_id
        AND o.connection_id = NEW.connection_id
    FOR UPDATE;
    IF FOUND AND head < NEW.id THEN
        RETURN NULL;
    END IF;
    PERFORM outbox_chats_refresh(ARRAY[NEW.tenant_id], ARRAY[NEW.contact_id],
        ARRAY[NEW.connection_id]);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER outbox_chats_insert AFTER INSERT ON messages
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.direction = 'out' AND NEW.status IN ('queued', 'sending'))
    EXECUTE FUNCTION outbox_chats_inserted();

-- Pending messages changed (status, due time, or chat: a contact merge moves messages) or
-- deleted: the chats they left and joined are computed again, once per statement.
CREATE FUNCTION outbox_chats_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ts BIGINT[];
    cs BIGINT[];
    ns BIGINT[];
BEGIN
    WITH changed AS (
        SELECT o.tenant_id AS ot, o.contact_id AS oc, o.connection_id AS onn,
            w.tenant_id AS wt, w.contact_id AS wc, w.connection_id AS wn
        FROM old_rows o JOIN new_rows w ON w.id = o.id
        WHERE ((o.direction = 'out' AND o.status IN ('queued', 'sending'))
                OR (w.direction = 'out' AND w.status IN ('queued', 'sending')))
            AND (o.status, o.next_attempt_at, o.direction, o.tenant_id, o.contact_id,
                    o.connection_id)
                IS DISTINCT FROM (w.status, w.next_attempt_at, w.direction, w.tenant_id,
                    w.contact_id, w.connection_id)
    ),
    chats AS (
        SELECT ot AS t, oc AS c, onn AS n FROM changed
        UNION SELECT wt, wc, wn FROM changed
    )
    SELECT array_agg(t ORDER BY t, c, n), array_agg(c ORDER BY t, c, n),
        array_agg(n ORDER BY t, c, n)
    INTO ts, cs, ns
    FROM chats;
    IF ts IS NOT NULL THEN
        PERFORM outbox_chats_refresh(ts, cs, ns);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION outbox_chats_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ts BIGINT[];
    cs BIGINT[];
    ns BIGINT[];
BEGIN
    WITH chats AS (
        SELECT DISTINCT o.tenant_id AS t, o.contact_id AS c, o.connection_id AS n
        FROM old_rows o
        WHERE o.direction = 'out' AND o.status IN ('queued', 'sending')
    )
    SELECT array_agg(t ORDER BY t, c, n), array_agg(c ORDER BY t, c, n),
        array_agg(n ORDER BY t, c, n)
    INTO ts, cs, ns
    FROM chats;
    IF ts IS NOT NULL THEN
        PERFORM outbox_chats_refresh(ts, cs, ns);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_chats_update AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_chats_updated();
CREATE TRIGGER outbox_chats_delete AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_chats_deleted();
