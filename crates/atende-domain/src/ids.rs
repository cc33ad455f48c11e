//! Typed ids so a queue id can never be passed where a user id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {$(
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = i64)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(value: i64) -> Self {
                Self(value)
            }
        }
    )*};
}

id_type!(
    /// One company using atende.
    TenantId,
    UserId,
    QueueId,
    ContactId,
    ContactIdentityId,
    ConnectionId,
    TicketId,
    TicketCycleId,
    MessageId,
    InboundEventId,
    TagId,
    DemandId,
    QuickReplyId,
    FlowId,
    TemplateId,
    AuditId,
    SessionId,
    JobId,
);
