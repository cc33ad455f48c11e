-- 0014 dashboard figures (PostgreSQL). Same shape as ../sqlite/0014_dashboard.sql.

-- ticket_cycles.first_response_at is stamped by the agent reply path from now on
-- (atende_db::outbox::queue_reply); cycles written before get it from their first agent reply
-- (author = 'user') sent inside the cycle.
UPDATE ticket_cycles SET first_response_at = (
        SELECT MIN(m.sent_at) FROM messages m
        WHERE m.tenant_id = ticket_cycles.tenant_id AND m.ticket_id = ticket_cycles.ticket_id
            AND m.direction = 'out' AND m.author = 'user'
            AND m.sent_at >= ticket_cycles.opened_at
            AND (ticket_cycles.closed_at IS NULL OR m.sent_at <= ticket_cycles.closed_at))
    WHERE first_response_at IS NULL;

-- The dashboard (SPEC §12) counts attendance episodes (cycles) per local day and measures their
-- first-response and resolution times over a date range. Each figure is a range on one of the
-- cycle's times, so each time gets an index led by tenant_id and that time, carrying what the
-- figures filter and group by (queue, owner) and where a duration starts (opened_at): no figure
-- reads the table itself. Partial where the time is often NULL (cycles not closed or not
-- answered yet).
CREATE INDEX ticket_cycles_opened ON ticket_cycles (tenant_id, opened_at, queue_id, owner_id);
CREATE INDEX ticket_cycles_closed
    ON ticket_cycles (tenant_id, closed_at, queue_id, owner_id, opened_at)
    WHERE closed_at IS NOT NULL;
CREATE INDEX ticket_cycles_first_response
    ON ticket_cycles (tenant_id, first_response_at, queue_id, owner_id, opened_at)
    WHERE first_response_at IS NOT NULL;
