//! (being written in this session) Automations after an inbound message; timers.
