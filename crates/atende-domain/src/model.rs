//! The entities of SPEC §1–§2 as plain values. Storage and transport map to and from these.

use crate::ids::*;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a string-backed enum with its wire name, used in JSON, SQL and the CLI alike.
#[macro_export]
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),* }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($wire => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                Self::parse(text).ok_or_else(|| {
                    let accepted: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown value '{text}', expected one of: {}", accepted.join(", "))
                })
            }
        }
    };
}

wire_enum!(
    /// What a user may do inside a tenant (SPEC §1).
    Profile { Admin = "admin", Supervisor = "supervisor", User = "user" }
);

impl Profile {
    /// Admins and supervisors manage the tenant's people and queues; only admins change settings.
    pub fn can_manage_settings(self) -> bool {
        matches!(self, Profile::Admin)
    }

    pub fn can_manage_tenant_data(self) -> bool {
        matches!(self, Profile::Admin | Profile::Supervisor)
    }
}

wire_enum!(
    /// Derived from live panel connections, never from login (SPEC §1).
    Presence { Online = "online", Paused = "paused", Offline = "offline" }
);

wire_enum!(
    ChannelKind {
        Webchat = "webchat",
        WhatsappCloud = "whatsapp_cloud",
        Evolution = "evolution",
        Instagram = "instagram",
        Telegram = "telegram",
    }
);

wire_enum!(
    ConnectionStatus {
        Disconnected = "disconnected",
        Connecting = "connecting",
        Connected = "connected",
        Error = "error",
    }
);

impl ConnectionStatus {
    /// The status of a new connection. The web chat is served by this server itself, so it is up
    /// whenever we are; every provider channel starts disconnected until the provider answers
    /// (a send or a check that succeeds, a pairing that completes).
    pub fn initial(kind: ChannelKind) -> ConnectionStatus {
        match kind {
            ChannelKind::Webchat => ConnectionStatus::Connected,
            _ => ConnectionStatus::Disconnected,
        }
    }
}

wire_enum!(
    TicketStatus { Pending = "pending", Open = "open", Paused = "paused", Closed = "closed" }
);

wire_enum!(
    MessageDirection { In = "in", Out = "out" }
);

wire_enum!(
    MessageAuthor { Contact = "contact", User = "user", Bot = "bot", System = "system" }
);

wire_enum!(
    MessageKind {
        Text = "text",
        Image = "image",
        Audio = "audio",
        Video = "video",
        Document = "document",
        Sticker = "sticker",
        Location = "location",
        ContactCard = "contact_card",
        Reaction = "reaction",
        CallLog = "call_log",
        SystemNote = "system_note",
        Template = "template",
    }
);

wire_enum!(
    MessageStatus {
        Queued = "queued",
        Sending = "sending",
        Sent = "sent",
        Delivered = "delivered",
        Read = "read",
        Failed = "failed",
    }
);

impl MessageStatus {
    /// Place in the delivery order `queued < sending < sent < delivered < read`; `failed` last.
    pub fn rank(self) -> u8 {
        match self {
            MessageStatus::Queued => 0,
            MessageStatus::Sending => 1,
            MessageStatus::Sent => 2,
            MessageStatus::Delivered => 3,
            MessageStatus::Read => 4,
            MessageStatus::Failed => 5,
        }
    }

    /// Whether a status update may replace `self` with `next` (SPEC §2, §7): forward only, so a
    /// late `delivered` never undoes `read`; `failed` only before the message was delivered;
    /// after `failed`, only `delivered`/`read` (the provider proves it arrived after all). Putting
    /// a failed message back in the queue is the resend command, not a status update.
    pub fn can_advance_to(self, next: MessageStatus) -> bool {
        let delivered = MessageStatus::Delivered.rank();
        match (self, next) {
            (MessageStatus::Failed, MessageStatus::Failed) => false,
            (_, MessageStatus::Failed) => self.rank() < delivered,
            (MessageStatus::Failed, _) => next.rank() >= delivered,
            _ => next.rank() > self.rank(),
        }
    }
}

wire_enum!(
    NameSource { Push = "push", Manual = "manual", Import = "import" }
);

wire_enum!(
    InboundOutcome {
        Received = "received",
        Processed = "processed",
        Duplicate = "duplicate",
        Dropped = "dropped",
        Failed = "failed",
    }
);

wire_enum!(
    JobStatus { Queued = "queued", Running = "running", Done = "done", Failed = "failed" }
);

wire_enum!(
    TokenKind { Session = "session", Api = "api" }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub suspended: bool,
    pub created_at: Timestamp,
}

/// A person who logs in. `tenant_id` is `None` only for platform superadmins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub tenant_id: Option<TenantId>,
    pub email: String,
    pub name: String,
    /// `None` for superadmins, who have no profile inside a tenant.
    pub profile: Option<Profile>,
    pub is_superadmin: bool,
    pub queue_ids: Vec<QueueId>,
    /// Weekly windows of this user (SPEC §8); `None` = the tenant's hours.
    pub business_hours: Option<serde_json::Value>,
    pub timezone: Option<String>,
    pub presence: Presence,
    pub pause_reason: Option<String>,
    pub locale: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Queue {
    pub id: QueueId,
    pub tenant_id: TenantId,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    pub greeting: String,
    pub absence_message: String,
    pub business_hours: Option<serde_json::Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactIdentity {
    pub id: ContactIdentityId,
    pub contact_id: ContactId,
    pub channel: ChannelKind,
    /// Phone in E.164, WhatsApp JID or LID, Instagram IGSID, Telegram chat id, web-chat visitor id.
    pub external_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub id: ContactId,
    pub tenant_id: TenantId,
    pub name: String,
    pub name_source: NameSource,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub avatar_url: Option<String>,
    pub blocked: bool,
    pub is_group: bool,
    pub custom_fields: serde_json::Value,
    pub identities: Vec<ContactIdentity>,
    /// Wallet owners, in wallet order (SPEC §6: the first who qualifies gets the ticket).
    pub wallet_user_ids: Vec<UserId>,
    pub tag_ids: Vec<TagId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Connection {
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub kind: ChannelKind,
    pub name: String,
    pub status: ConnectionStatus,
    pub default_queue_id: Option<QueueId>,
    pub default_flow_id: Option<FlowId>,
    /// Public key of a web-chat connection (used in widget URLs); `None` for other kinds.
    pub public_key: Option<String>,
    /// Whether credentials are stored; their value is never returned.
    pub has_credentials: bool,
    pub send_delay_min_ms: Option<i64>,
    pub send_delay_max_ms: Option<i64>,
    /// `None` = the channel kind's default (cadence on for unofficial WhatsApp).
    pub cadence_enabled: Option<bool>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Demand {
    pub id: DemandId,
    pub tenant_id: TenantId,
    pub name: String,
    pub active: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tag {
    pub id: TagId,
    pub tenant_id: TenantId,
    pub name: String,
    pub color: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuickReply {
    pub id: QuickReplyId,
    pub tenant_id: TenantId,
    /// Typed after `/` in the chat box; unique per tenant.
    pub shortcut: String,
    pub body: String,
    /// `None` = everyone; otherwise only this user sees it.
    pub user_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Flow {
    pub id: FlowId,
    pub tenant_id: TenantId,
    pub name: String,
    pub version: i64,
    pub active: bool,
    /// The graph (nodes and edges); its engine comes with the flow issue.
    pub graph: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Template {
    pub id: TemplateId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub components: serde_json::Value,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: AuditId,
    pub tenant_id: Option<TenantId>,
    pub user_id: Option<UserId>,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    pub detail: serde_json::Value,
    pub ip: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: JobId,
    pub tenant_id: TenantId,
    pub kind: String,
    pub status: JobStatus,
    pub payload: serde_json::Value,
    pub progress: i64,
    pub total: i64,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub attempts: i64,
    pub due_at: Timestamp,
    pub lease_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A conversation (SPEC §2). Only the columns the foundation needs are typed here; the ticket
/// engine grows this type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ticket {
    pub id: TicketId,
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub connection_id: ConnectionId,
    pub status: TicketStatus,
    pub owner_id: Option<UserId>,
    pub queue_id: Option<QueueId>,
    pub is_group: bool,
    pub protocol: String,
    pub bot_flow_id: Option<FlowId>,
    pub integration_active: bool,
    pub wallet_overflowed: bool,
    pub unread: i64,
    pub last_message: String,
    pub last_message_at: Option<Timestamp>,
    pub last_inbound_at: Option<Timestamp>,
    pub out_of_hours_sent: i64,
    pub pause_reason: Option<String>,
    pub closed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub ticket_id: TicketId,
    pub connection_id: ConnectionId,
    pub contact_id: ContactId,
    pub direction: MessageDirection,
    pub author: MessageAuthor,
    pub author_user_id: Option<UserId>,
    pub kind: MessageKind,
    pub body: String,
    pub provider_id: Option<String>,
    pub quoted_id: Option<MessageId>,
    pub status: MessageStatus,
    pub failure_reason: Option<String>,
    pub idempotency_key: Option<String>,
    pub queue_stamp: Option<QueueId>,
    pub imported: bool,
    pub sent_at: Timestamp,
    pub created_at: Timestamp,
}
