-- 0009 maintenance actions (PostgreSQL). Same shape as ../sqlite/0009_maintenance.sql.

-- `fix_imported_message_dates` (SPEC §10) walks the tenant's imported messages, which are few
-- next to live ones: partial, so live traffic costs nothing and the walk skips every live row.
CREATE INDEX messages_imported ON messages (tenant_id, id) WHERE imported = TRUE;
