//! Rows a test needs that no API creates on its own: a ticket on a provider channel whose contact
//! has just written, as the provider's inbound path leaves it (so WhatsApp's 24 h window is open
//! and replies may go out).

use atende_db::Db;
use atende_db::messages::{self, NewMessage};
use atende_db::tickets::{self, NewTicket};
use atende_domain::{
    ConnectionId, ContactId, MessageAuthor, MessageDirection, MessageKind, MessageStatus, QueueId,
    TenantId, Ticket, TicketStatus, Timestamp, UserId,
};

/// Where the written chat sits: its contact and connection, and the ticket's state.
#[derive(Debug, Clone)]
pub struct WrittenChat {
    pub contact: ContactId,
    pub connection: ConnectionId,
    pub status: TicketStatus,
    pub owner: Option<UserId>,
    pub queue: Option<QueueId>,
}

impl WrittenChat {
    /// An open ticket with no owner or queue.
    pub fn open(contact: ContactId, connection: ConnectionId) -> Self {
        WrittenChat {
            contact,
            connection,
            status: TicketStatus::Open,
            owner: None,
            queue: None,
        }
    }
}

/// Creates the ticket and the contact's message `body` (provider id `provider_id`), written now.
pub async fn ticket_with_inbound(
    db: &Db,
    tenant: TenantId,
    chat: &WrittenChat,
    provider_id: &str,
    body: &str,
) -> anyhow::Result<Ticket> {
    let ticket = tickets::create(
        db,
        tenant,
        &NewTicket {
            contact_id: chat.contact,
            connection_id: chat.connection,
            status: chat.status,
            owner_id: chat.owner,
            queue_id: chat.queue,
            is_group: false,
        },
    )
    .await?;
    messages::insert(
        db,
        tenant,
        &NewMessage {
            ticket_id: ticket.id,
            connection_id: chat.connection,
            contact_id: chat.contact,
            direction: MessageDirection::In,
            author: MessageAuthor::Contact,
            author_user_id: None,
            kind: MessageKind::Text,
            body: body.into(),
            provider_id: Some(provider_id.into()),
            quoted_id: None,
            status: MessageStatus::Delivered,
            failure_reason: None,
            idempotency_key: None,
            queue_stamp: None,
            imported: false,
            sent_at: Timestamp::now(),
        },
    )
    .await?;
    Ok(ticket)
}
