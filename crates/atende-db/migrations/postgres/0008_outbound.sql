-- 0008 outbound delivery (PostgreSQL). Same shape as ../sqlite/0008_outbound.sql.

-- The sender keeps strict order per chat (SPEC §7): before taking a message it asks whether an
-- earlier message of the same chat (contact + connection) is still queued or sending. Partial,
-- so the sent history of a chat costs nothing.
CREATE INDEX messages_outbox_chat ON messages (tenant_id, contact_id, connection_id, id)
    WHERE status IN ('queued', 'sending');
