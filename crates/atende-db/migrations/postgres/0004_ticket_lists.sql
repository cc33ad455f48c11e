-- 0004 ticket lists and tab counters (PostgreSQL). Same shape as ../sqlite/0004_ticket_lists.sql.
--
-- A page of a list is a UNION of arms, one per branch of the viewer's visibility plan (and per
-- status and queue), each `ORDER BY <sort key> DESC, id DESC LIMIT n` over an index that starts
-- with the arm's equalities and ends in the sort key (ARCHITECTURE "Traps"); see
-- crates/atende-db/src/ticket_list.rs.
--
-- Sort keys: `updated_at`, or the last inbound message falling back to the creation time for
-- tickets that have none yet (`COALESCE(last_inbound_at, created_at)`): one total order with no
-- NULLs, so keyset paging behaves the same on both stores. The 0002 indexes on the bare
-- `last_inbound_at` cannot serve that expression and are replaced.
DROP INDEX tickets_queue_inbound;
DROP INDEX tickets_owner_inbound;
CREATE INDEX tickets_queue_recent
    ON tickets (tenant_id, status, queue_id, (COALESCE(last_inbound_at, created_at)), id);
CREATE INDEX tickets_owner_recent
    ON tickets (tenant_id, status, owner_id, (COALESCE(last_inbound_at, created_at)), id);

-- The Groups tab: group tickets are few, so a partial index keeps their list from scanning every
-- ticket of a status.
CREATE INDEX tickets_group_recent
    ON tickets (tenant_id, status, (COALESCE(last_inbound_at, created_at)), id) WHERE is_group = TRUE;
CREATE INDEX tickets_group_updated
    ON tickets (tenant_id, status, updated_at, id) WHERE is_group = TRUE;

-- "Held by a bot or an integration" as one column, so the unread indexes below can carry it.
ALTER TABLE tickets ADD COLUMN bot_active BOOLEAN
    GENERATED ALWAYS AS (bot_flow_id IS NOT NULL OR integration_session IS NOT NULL) STORED;

-- Tab counters count visible tickets with unread messages: partial indexes over those tickets
-- only, led like the counter arms (status and group/private are fixed by the tab, then queue or
-- owner) and carrying every column a visibility branch tests. They replace the narrower 0002
-- index.
DROP INDEX tickets_unread;
CREATE INDEX tickets_unread_queue
    ON tickets (tenant_id, status, is_group, queue_id, owner_id, bot_active, wallet_overflowed,
        contact_id)
    WHERE unread > 0;
CREATE INDEX tickets_unread_owner
    ON tickets (tenant_id, status, is_group, owner_id, queue_id, bot_active, wallet_overflowed,
        contact_id)
    WHERE unread > 0;
