//! (being written in this session) Ticket lists, counters, detail and messages as a viewer sees them.
