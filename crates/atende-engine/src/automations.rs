//! Automations that follow an inbound message (SPEC §4 step 8, §8): the absence message outside
//! business hours, the auto-resolve due time; later the bot step and integrations. Also the
//! auto-resolve pass the worker runs when a due time comes.
//!
//! Auto-resolve is driven by a due time per ticket (`tickets.auto_resolve_due_at`), never by a
//! scan: it is set when our message is the last one ([`Engine::refresh_auto_resolve`], called after
//! every move and, later, by the outbound sender), cleared when the contact writes, and the worker
//! sleeps until the earliest one. Setting a due time earlier than the one the worker sleeps until
//! wakes it ([`AutomationState`]).

use crate::events::EventKind;
use crate::{Engine, EngineError, EngineResult};
use atende_db::lifecycle::{AutomaticMessage, AutomationFacts, InboundFacts};
use atende_domain::lifecycle::CloseReason;
use atende_domain::schedule::{
    AutoResolve, IdleFacts, LastMessage, QueueHours, UserHours, absence_message,
    auto_resolve_due_at, effective_schedule,
};
use atende_domain::{
    Message, MessageDirection, TenantId, Ticket, TicketId, TicketStatus, Timestamp,
};
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::Notify;

/// Tickets closed per query of the auto-resolve pass.
pub const AUTO_RESOLVE_BATCH: i64 = 100;

/// What the auto-resolve worker shares with the code that sets due times.
pub struct AutomationState {
    wake: Notify,
    /// The instant (ms) the worker sleeps until; `i64::MAX` before it first sleeps.
    sleeping_until: AtomicI64,
}

impl Default for AutomationState {
    fn default() -> Self {
        Self {
            wake: Notify::new(),
            sleeping_until: AtomicI64::new(i64::MAX),
        }
    }
}

impl AutomationState {
    /// A due time was stored: wake the worker if it sleeps past it. `notify_one` keeps a permit
    /// when the worker is not waiting yet, so a wake-up between its query and its sleep is not lost.
    pub fn due_time_set(&self, due: Timestamp) {
        if due.0 < self.sleeping_until.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
    }

    pub(crate) fn sleeping_until(&self, until: Timestamp) {
        self.sleeping_until.store(until.0, Ordering::Release);
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }
}

fn idle_facts(facts: &AutomationFacts) -> IdleFacts {
    IdleFacts {
        status: facts.status,
        is_group: facts.is_group,
        last_message: facts.last_message,
        cycle_opened_at: facts.cycle_opened_at,
    }
}

impl Engine {
    /// Runs after an inbound message was stored and published. `created` = the ticket is new
    /// (or reopened into a new cycle) with this message.
    ///
    /// The contact spoke, so the auto-resolve due time goes; outside the effective business hours
    /// the absence message is queued, at most `out_of_hours_message_max` times per cycle. One read
    /// in the common case (within hours, nothing due).
    pub async fn after_inbound(
        &self,
        tenant: TenantId,
        ticket: &Ticket,
        message: &Message,
        created: bool,
    ) -> EngineResult<()> {
        self.after_inbound_with_facts(tenant, ticket, message, created, None)
            .await
    }

    /// [`Engine::after_inbound`] for a caller that read the ticket's inbound facts already (the
    /// inbound group commit reads them with the ticket, saving a read per message).
    pub async fn after_inbound_with_facts(
        &self,
        tenant: TenantId,
        ticket: &Ticket,
        message: &Message,
        created: bool,
        facts: Option<atende_db::lifecycle::InboundFacts>,
    ) -> EngineResult<()> {
        // The absence counter is per cycle in the store: a new cycle needs nothing special here.
        let _ = created;
        if message.direction != MessageDirection::In || message.imported {
            return Ok(());
        }
        let facts = match facts {
            Some(facts) => facts,
            None => atende_db::lifecycle::inbound_facts(self.db(), tenant, ticket.id).await?,
        };
        // The last message is now the contact's: nothing is due (SPEC §8).
        if facts.auto_resolve_due_at.is_some() {
            atende_db::lifecycle::set_auto_resolve_due(self.db(), tenant, ticket.id, None).await?;
        }
        self.send_absence_message(tenant, ticket, message, &facts)
            .await
    }

    async fn send_absence_message(
        &self,
        tenant: TenantId,
        ticket: &Ticket,
        message: &Message,
        facts: &InboundFacts,
    ) -> EngineResult<()> {
        let settings = self.settings(tenant).await?;
        let max = settings.out_of_hours_message_max;
        if facts.out_of_hours_sent >= max || facts.is_group || facts.status == TicketStatus::Closed
        {
            return Ok(());
        }
        let owner = match ticket.owner_id {
            Some(owner) if settings.use_user_business_hours => {
                atende_db::users::get(self.db(), tenant, owner).await.ok()
            }
            _ => None,
        };
        let queue = QueueHours {
            business_hours: facts.queue_business_hours.as_ref(),
            absence_message: &facts.queue_absence_message,
        };
        let effective =
            effective_schedule(Some(queue), owner.as_ref().map(UserHours::from), &settings);
        // Judged when the message reached us: a provider timestamp can be late or replayed.
        let Some(text) = absence_message(
            &effective,
            message.created_at,
            facts.is_group,
            facts.out_of_hours_sent,
            max,
        ) else {
            return Ok(());
        };
        let written = atende_db::lifecycle::queue_absence_message(
            self.db(),
            tenant,
            ticket.id,
            text,
            max,
            Timestamp::now(),
        )
        .await?;
        if let Some(id) = written {
            let absence = atende_db::messages::get(self.db(), tenant, id).await?;
            let current = atende_db::tickets::get(self.db(), tenant, ticket.id).await?;
            self.publish_message(tenant, EventKind::MessageCreated, &current, &absence)
                .await?;
            self.publish_ticket(tenant, EventKind::TicketUpdated, &current, None)
                .await?;
            tracing::info!(tenant = %tenant, ticket = %ticket.id, "absence message queued");
        }
        Ok(())
    }

    /// Recomputes and stores the ticket's auto-resolve due time from its messages (SPEC §8): call
    /// it after writing a message of ours (the outbound sender does) or after a move. Answers the
    /// due time now stored.
    pub async fn refresh_auto_resolve(
        &self,
        tenant: TenantId,
        ticket: TicketId,
    ) -> EngineResult<Option<Timestamp>> {
        let facts = atende_db::lifecycle::automation_facts(self.db(), tenant, ticket).await?;
        self.store_auto_resolve_due(tenant, ticket, &facts).await
    }

    /// The auto-resolve due time of a ticket once a message of ours sent `now` is its last one
    /// (SPEC §8), from what a reply read about it: written with the reply, not read back.
    pub(crate) async fn due_after_our_message(
        &self,
        tenant: TenantId,
        chat: &atende_db::outbox::ReplyContext,
        now: Timestamp,
    ) -> EngineResult<Option<Timestamp>> {
        let settings = self.settings(tenant).await?;
        let facts = IdleFacts {
            status: chat.ticket.status,
            is_group: chat.ticket.is_group,
            last_message: Some(LastMessage {
                ours: true,
                sent_at: now,
            }),
            cycle_opened_at: chat.cycle_opened_at,
        };
        Ok(auto_resolve_due_at(AutoResolve::from(&*settings), &facts))
    }

    async fn store_auto_resolve_due(
        &self,
        tenant: TenantId,
        ticket: TicketId,
        facts: &AutomationFacts,
    ) -> EngineResult<Option<Timestamp>> {
        let settings = self.settings(tenant).await?;
        let due = auto_resolve_due_at(AutoResolve::from(&*settings), &idle_facts(facts));
        if due != facts.auto_resolve_due_at {
            let changed =
                atende_db::lifecycle::set_auto_resolve_due(self.db(), tenant, ticket, due).await?;
            if changed && let Some(due) = due {
                self.automations().due_time_set(due);
            }
        }
        Ok(due)
    }

    /// Closes every ticket whose auto-resolve time has come by `now` (one batch). Answers how many
    /// due tickets were looked at, so the worker knows whether to go on at once.
    pub async fn auto_resolve_pass(&self, now: Timestamp) -> EngineResult<usize> {
        let due =
            atende_db::lifecycle::platform_due_auto_resolve(self.db(), now, AUTO_RESOLVE_BATCH)
                .await?;
        for entry in &due {
            if let Err(error) = self
                .auto_resolve_one(entry.tenant_id, entry.ticket_id, now)
                .await
            {
                // Try again later rather than spin on a ticket that keeps failing.
                tracing::warn!(%error, tenant = %entry.tenant_id, ticket = %entry.ticket_id, "auto-resolve failed; retrying in a minute");
                atende_db::lifecycle::set_auto_resolve_due(
                    self.db(),
                    entry.tenant_id,
                    entry.ticket_id,
                    Some(now.plus_minutes(1)),
                )
                .await?;
            }
        }
        Ok(due.len())
    }

    /// Closes one ticket for inactivity if the rule still says so at `now` (the contact may have
    /// written meanwhile, the settings may have changed); otherwise stores the corrected due time.
    /// Answers whether it closed the ticket.
    pub async fn auto_resolve_one(
        &self,
        tenant: TenantId,
        id: TicketId,
        now: Timestamp,
    ) -> EngineResult<bool> {
        let settings = self.settings(tenant).await?;
        let facts = match atende_db::lifecycle::automation_facts(self.db(), tenant, id).await {
            Ok(facts) => facts,
            Err(atende_db::DbError::NotFound) => return Ok(false),
            Err(other) => return Err(other.into()),
        };
        let due = auto_resolve_due_at(AutoResolve::from(&*settings), &idle_facts(&facts));
        if due.is_none_or(|due| due > now) {
            atende_db::lifecycle::set_auto_resolve_due(self.db(), tenant, id, due).await?;
            return Ok(false);
        }
        let ticket = atende_db::tickets::get(self.db(), tenant, id).await?;
        let message = settings.auto_resolve_message.trim();
        let message = (!message.is_empty()).then(|| AutomaticMessage {
            body: message.to_owned(),
            idempotency_key: format!(
                "auto_resolve:{}:{}",
                id.0,
                facts.cycle_id.map_or(0, |c| c.0)
            ),
        });
        match self
            .system_close(tenant, &ticket, CloseReason::Inactivity, message)
            .await
        {
            Ok(_) => Ok(true),
            // Someone moved the ticket meanwhile; their move refreshed the due time.
            Err(EngineError::Conflict(_) | EngineError::InvalidState(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
}

impl Engine {
    /// The auto-resolve worker's wake-up state.
    pub fn automations(&self) -> &AutomationState {
        &self.inner.automations
    }
}
