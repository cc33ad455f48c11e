-- 0005 ticket lifecycle and automations (PostgreSQL). Same shape as ../sqlite/0005_lifecycle.sql.

-- The auto-resolve worker (SPEC §8) sleeps until the earliest due time of every tenant and then
-- takes the due tickets in order: like the outbound claim index, it is not led by tenant_id on
-- purpose. Partial, so tickets without a due time cost nothing.
CREATE INDEX tickets_auto_resolve_due ON tickets (auto_resolve_due_at, tenant_id, id)
    WHERE auto_resolve_due_at IS NOT NULL;

-- The cycle that tickets.out_of_hours_sent counts for: a ticket whose current_cycle_id differs
-- has sent no absence message in its current cycle, whoever started that cycle.
ALTER TABLE tickets ADD COLUMN out_of_hours_cycle_id BIGINT NULL;
