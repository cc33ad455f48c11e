//! Publishing ticket and message events with the visibility facts the live push filters on.
//! Every service that changes a ticket or stores a message announces it through here.

use crate::events::{Audience, Event, EventKind};
use crate::{Engine, EngineResult};
use atende_domain::visibility::TicketFacts;
use atende_domain::{Message, TenantId, Ticket};
use std::sync::Arc;

/// What the visibility rule needs, from a ticket and its contact's wallet owners.
pub fn facts_of(ticket: &Ticket, wallet_owner_ids: Vec<atende_domain::UserId>) -> TicketFacts {
    TicketFacts {
        status: ticket.status,
        owner_id: ticket.owner_id,
        queue_id: ticket.queue_id,
        is_group: ticket.is_group,
        bot_active: ticket.bot_flow_id.is_some() || ticket.integration_active,
        wallet_overflowed: ticket.wallet_overflowed,
        wallet_owner_ids,
    }
}

impl Engine {
    /// The visibility facts of a ticket as stored now.
    pub async fn ticket_facts(
        &self,
        tenant: TenantId,
        ticket: &Ticket,
    ) -> EngineResult<TicketFacts> {
        let wallet = atende_db::contacts::wallet_of(self.db(), tenant, ticket.contact_id).await?;
        Ok(facts_of(ticket, wallet))
    }

    /// Announces a ticket change. `before` = the facts before the change, so viewers who lose
    /// sight of the ticket are told to drop it.
    pub async fn publish_ticket(
        &self,
        tenant: TenantId,
        kind: EventKind,
        ticket: &Ticket,
        before: Option<TicketFacts>,
    ) -> EngineResult<Arc<Event>> {
        let facts = self.ticket_facts(tenant, ticket).await?;
        Ok(self.publish_ticket_with_facts(tenant, kind, ticket, facts, before))
    }

    /// `publish_ticket` for a caller that already holds the ticket's facts (the inbound hot path).
    pub fn publish_ticket_with_facts(
        &self,
        tenant: TenantId,
        kind: EventKind,
        ticket: &Ticket,
        facts: TicketFacts,
        before: Option<TicketFacts>,
    ) -> Arc<Event> {
        let data = serde_json::to_value(ticket).unwrap_or_default();
        let audience = Audience::Ticket {
            ticket_id: ticket.id,
            facts,
            before,
        };
        self.events().publish(tenant, kind, data, audience)
    }

    /// Announces a stored (or updated) message of `ticket`.
    pub async fn publish_message(
        &self,
        tenant: TenantId,
        kind: EventKind,
        ticket: &Ticket,
        message: &Message,
    ) -> EngineResult<Arc<Event>> {
        let facts = self.ticket_facts(tenant, ticket).await?;
        Ok(self.publish_message_with_facts(tenant, kind, ticket, message, facts))
    }

    /// `publish_message` for a caller that already holds the ticket's facts.
    pub fn publish_message_with_facts(
        &self,
        tenant: TenantId,
        kind: EventKind,
        ticket: &Ticket,
        message: &Message,
        facts: TicketFacts,
    ) -> Arc<Event> {
        let data = serde_json::to_value(message).unwrap_or_default();
        let audience = Audience::Ticket {
            ticket_id: ticket.id,
            facts,
            before: None,
        };
        self.events().publish(tenant, kind, data, audience)
    }
}
