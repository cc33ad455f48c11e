-- 0010 WhatsApp Business window and template messages (PostgreSQL). Same shape as
-- ../sqlite/0010_waba_window.sql.

-- The cycle in which the ticket last sent a template: with waba_send_outside_window, free-form
-- messages may go out after the 24 h window once a template went out in the current cycle
-- (SPEC §7). A ticket whose current_cycle_id differs has sent none in this cycle.
ALTER TABLE tickets ADD COLUMN template_cycle_id BIGINT NULL;

-- What a message of kind 'template' asks the provider to send: JSON {name, language, params}.
-- Its body keeps the filled-in text the chat shows.
ALTER TABLE messages ADD COLUMN template_call TEXT NULL;
