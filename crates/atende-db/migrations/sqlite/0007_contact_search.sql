-- Folded (lower case, no accents) name and e-mail of each contact, written by the application, so
-- search is case- and accent-insensitive on every store.
ALTER TABLE contacts ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
UPDATE contacts SET search_text = LOWER(name || ' ' || COALESCE(email, ''));
