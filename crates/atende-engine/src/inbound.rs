//! (being written in this session) The inbound pipeline.
