//! (being written in this session) Outbox claiming and delivery statuses.
