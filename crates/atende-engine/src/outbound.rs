//! (being written in this session) The outbound sender.
