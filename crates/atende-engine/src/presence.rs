//! (being written in this session) Presence of users from their live connections.

/// Live panel connections per user.
#[derive(Default)]
pub struct PresenceTracker {}
