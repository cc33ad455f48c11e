//! (being written in this session) Ticket lifecycle commands.
