-- 0012 outbox heads (SQLite). Same shape as ../postgres/0012_outbox_heads.sql.

-- The sender looks for the first pending message of every chat (contact + connection) in one scan
-- of this index: with `direction` in its condition it answers without reading the rows, so a
-- long backlog costs one pass over the pending entries, not a look-up per message waiting behind
-- its chat. It replaces 0008's index, which every query using it also restricts to 'out'.
DROP INDEX messages_outbox_chat;
CREATE INDEX messages_outbox_head ON messages (tenant_id, contact_id, connection_id, id)
    WHERE status IN ('queued', 'sending') AND direction = 'out';
