//! Ticket lifecycle commands (SPEC §3): accept, return, transfer, pause, resume, close, reopen, and
//! the system's own moves (automatic close, automatic move to pending, wallet overflow).
//!
//! Each command: the caller must see the ticket (else 404), ids in the input must be of the tenant
//! (else 404 naming the field), `atende_domain::lifecycle::decide` answers the move or refuses it,
//! `atende_db::lifecycle::apply` writes it in one transaction (ticket, cycle, system note, audit)
//! guarded against concurrent changes, and the change is announced (ticket event with the facts
//! from before, so viewers who lose sight of it drop it, and the note as a new message).

use crate::auth::{ClientInfo, Principal};
use crate::events::EventKind;
use crate::{Engine, EngineError, EngineResult};
use atende_db::DbError;
use atende_db::audit::NewAudit;
use atende_db::lifecycle::{Applied, AutomaticMessage, Expected, STALE_TICKET};
use atende_domain::lifecycle::{
    Actor, CloseReason, Command, LifecycleSettings, NameRef, Refusal, SystemNote, TicketState,
    decide,
};
use atende_domain::settings::Locale;
use atende_domain::{
    DemandId, QueueId, TenantId, Ticket, TicketId, Timestamp, UserId, ValidationError,
};
use std::collections::HashMap;

/// Longest transfer note, closing note or pause reason kept.
const MAX_NOTE_CHARS: usize = 2000;

/// Where a transfer goes (at least one of queue and user).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferTarget {
    pub queue_id: Option<QueueId>,
    pub user_id: Option<UserId>,
    pub note: Option<String>,
}

/// Who asks, for the decision and the audit log.
struct Acting<'a> {
    actor: Actor,
    client: Option<&'a ClientInfo>,
}

fn refusal(refusal: Refusal) -> EngineError {
    match refusal {
        Refusal::InvalidState(reason) => EngineError::InvalidState(reason),
        Refusal::Forbidden(reason) => EngineError::Forbidden(reason),
        Refusal::Invalid { field, message } => {
            EngineError::Validation(ValidationError::field(field, message))
        }
    }
}

fn bounded_text(field: &str, text: Option<String>) -> EngineResult<Option<String>> {
    match text {
        Some(text) if text.chars().count() > MAX_NOTE_CHARS => Err(ValidationError::field(
            field,
            format!("must be at most {MAX_NOTE_CHARS} characters"),
        )
        .into()),
        other => Ok(other),
    }
}

/// An id given in the input that is not in the tenant: 404 naming the field.
fn unknown(field: &'static str, id: i64) -> impl FnOnce(DbError) -> EngineError {
    move |error| match error {
        DbError::NotFound => EngineError::UnknownReference { field, id },
        other => other.into(),
    }
}

fn state_of(ticket: &Ticket) -> TicketState {
    TicketState {
        status: ticket.status,
        owner_id: ticket.owner_id,
        queue_id: ticket.queue_id,
        bot_active: ticket.bot_flow_id.is_some() || ticket.integration_active,
        wallet_overflowed: ticket.wallet_overflowed,
        pause_reason: ticket.pause_reason.clone(),
    }
}

impl Engine {
    /// pending → open, owned by the caller; ends the bot and clears the unread count.
    pub async fn accept(
        &self,
        principal: &Principal,
        id: TicketId,
        client: &ClientInfo,
    ) -> EngineResult<Ticket> {
        self.user_command(principal, id, Command::Accept, client)
            .await
    }

    /// open → pending (back to the queue; the owner stays with `keep_user_on_pending`).
    pub async fn return_ticket(
        &self,
        principal: &Principal,
        id: TicketId,
        client: &ClientInfo,
    ) -> EngineResult<Ticket> {
        self.user_command(principal, id, Command::Return, client)
            .await
    }

    /// To a queue and/or a user. Targets outside the tenant → 404 naming `queue_id` / `user_id`.
    pub async fn transfer(
        &self,
        principal: &Principal,
        id: TicketId,
        target: TransferTarget,
        client: &ClientInfo,
    ) -> EngineResult<Ticket> {
        let tenant = principal.tenant()?;
        if let Some(queue) = target.queue_id {
            atende_db::queues::get(self.db(), tenant, queue)
                .await
                .map_err(unknown("queue_id", queue.0))?;
        }
        if let Some(user) = target.user_id {
            atende_db::users::get(self.db(), tenant, user)
                .await
                .map_err(unknown("user_id", user.0))?;
        }
        let note = bounded_text("note", target.note)?;
        let command = Command::Transfer {
            queue_id: target.queue_id,
            user_id: target.user_id,
            note,
        };
        self.user_command(principal, id, command, client).await
    }

    /// open → paused (only with `allow_pause`).
    pub async fn pause(
        &self,
        principal: &Principal,
        id: TicketId,
        reason: Option<String>,
        client: &ClientInfo,
    ) -> EngineResult<Ticket> {
        let reason = bounded_text("reason", reason)?;
        self.user_command(principal, id, Command::Pause { reason }, client)
            .await
    }

    /// paused → open.
    pub async fn resume(
        &self,
        principal: &Principal,
        id: TicketId,
        client: &ClientInfo,
    ) -> EngineResult<Ticket> {
        self.user_command(principal, id, Command::Resume, client)
            .await
    }

    /// Closes the ticket and its cycle with the demand and note. A demand outside the tenant →
    /// 404 naming `demand_id`; an inactive one → 422.
    pub async fn close(
        &self,
        principal: &Principal,
        id: TicketId,
        demand_id: Option<DemandId>,
        note: Option<String>,
        client: &ClientInfo,
    ) -> EngineResult<Ticket> {
        let tenant = principal.tenant()?;
        if let Some(demand) = demand_id {
            let found = atende_db::demands::get(self.db(), tenant, demand)
                .await
                .map_err(unknown("demand_id", demand.0))?;
            if !found.active {
                return Err(ValidationError::field(
                    "demand_id",
                    "this demand is inactive; choose an active one",
                )
                .into());
            }
        }
        let note = bounded_text("note", note)?;
        self.user_command(principal, id, Command::Close { demand_id, note }, client)
            .await
    }

    /// closed → open for the caller, in a new cycle. Refused (409) while the contact has another
    /// non-closed ticket on the same connection.
    pub async fn reopen(
        &self,
        principal: &Principal,
        id: TicketId,
        client: &ClientInfo,
    ) -> EngineResult<Ticket> {
        self.user_command(principal, id, Command::Reopen, client)
            .await
    }

    async fn user_command(
        &self,
        principal: &Principal,
        id: TicketId,
        command: Command,
        client: &ClientInfo,
    ) -> EngineResult<Ticket> {
        let tenant = principal.tenant()?;
        let profile = principal.profile()?;
        // Not visible → 404, exactly as a ticket of another tenant (SPEC §5).
        let ticket = self.visible_ticket(principal, id).await?;
        let acting = Acting {
            actor: Actor::User {
                user_id: principal.user_id(),
                profile,
            },
            client: Some(client),
        };
        self.run_transition(tenant, &ticket, &acting, command, None)
            .await
    }

    /// The lifecycle settings of the tenant, with the first admin standing in for an unset
    /// `designated_admin`.
    async fn lifecycle_settings(&self, tenant: TenantId) -> EngineResult<LifecycleSettings> {
        let settings = self.settings(tenant).await?;
        let first_admin = if settings.force_admin_on_pending && settings.designated_admin.is_none()
        {
            atende_db::users::list_admin_ids(self.db(), tenant)
                .await?
                .first()
                .copied()
        } else {
            None
        };
        Ok(LifecycleSettings::from_settings(&settings, first_admin))
    }

    /// Decides, applies and announces one move of `ticket` (as loaded by the caller).
    async fn run_transition(
        &self,
        tenant: TenantId,
        ticket: &Ticket,
        acting: &Acting<'_>,
        command: Command,
        automatic: Option<AutomaticMessage>,
    ) -> EngineResult<Ticket> {
        let settings = self.lifecycle_settings(tenant).await?;
        let transition =
            decide(&state_of(ticket), acting.actor, &command, &settings).map_err(refusal)?;
        if command == Command::Reopen {
            self.ensure_no_other_open_ticket(tenant, ticket).await?;
        }
        let before = self.ticket_facts(tenant, ticket).await?;
        let note = self.render_note(tenant, &transition.note).await?;
        let detail = serde_json::json!({
            "from": { "status": ticket.status, "owner_id": ticket.owner_id, "queue_id": ticket.queue_id },
            "to": { "status": transition.status, "owner_id": transition.owner_id, "queue_id": transition.queue_id },
            "note": transition.note.key(),
            "text": note,
        });
        let audit = NewAudit {
            user_id: match acting.actor {
                Actor::User { user_id, .. } => Some(user_id),
                Actor::System => None,
            },
            detail,
            ip: acting.client.map(|c| c.ip.clone()),
            ..NewAudit::default()
        };
        let apply = atende_db::lifecycle::Apply {
            ticket_id: ticket.id,
            expected: Expected {
                status: ticket.status,
                owner_id: ticket.owner_id,
                queue_id: ticket.queue_id,
            },
            transition: &transition,
            note,
            automatic,
            audit,
            now: Timestamp::now(),
        };
        let applied = match atende_db::lifecycle::apply(self.db(), tenant, &apply).await {
            Ok(applied) => applied,
            Err(DbError::Conflict { constraint }) if constraint == STALE_TICKET => {
                return Err(EngineError::Conflict(
                    "the ticket changed while you acted on it; reload it and try again".into(),
                ));
            }
            Err(DbError::Conflict { .. }) if command == Command::Reopen => {
                return Err(EngineError::Conflict(
                    "the contact already has an open ticket on this connection; close it before reopening this one".into(),
                ));
            }
            Err(other) => return Err(other.into()),
        };
        if matches!(
            transition.status,
            atende_domain::TicketStatus::Open | atende_domain::TicketStatus::Pending
        ) {
            self.refresh_auto_resolve(tenant, ticket.id).await?;
        }
        let updated = atende_db::tickets::get(self.db(), tenant, ticket.id).await?;
        self.announce(tenant, ticket, &updated, before, &applied)
            .await?;
        tracing::info!(tenant = %tenant, ticket = %ticket.id, action = transition.audit_action, status = %updated.status, "ticket moved");
        Ok(updated)
    }

    /// 409 naming the other ticket when reopening would make two non-closed tickets of one
    /// contact on one connection (SPEC §2 invariant).
    async fn ensure_no_other_open_ticket(
        &self,
        tenant: TenantId,
        ticket: &Ticket,
    ) -> EngineResult<()> {
        let open = atende_db::tickets::find_open_for_contact(
            self.db(),
            tenant,
            ticket.contact_id,
            ticket.connection_id,
        )
        .await?;
        match open {
            Some(other) if other.id != ticket.id => Err(EngineError::Conflict(format!(
                "the contact already has ticket {} ({}) open on this connection; close it before reopening this one",
                other.id, other.status
            ))),
            _ => Ok(()),
        }
    }

    /// Publishes the ticket change and the messages the move wrote.
    async fn announce(
        &self,
        tenant: TenantId,
        before_ticket: &Ticket,
        updated: &Ticket,
        before: atende_domain::visibility::TicketFacts,
        applied: &Applied,
    ) -> EngineResult<()> {
        let kind = if updated.status == before_ticket.status {
            EventKind::TicketUpdated
        } else {
            EventKind::TicketStatusChanged
        };
        self.publish_ticket(tenant, kind, updated, Some(before))
            .await?;
        for id in applied
            .automatic_id
            .into_iter()
            .chain(Some(applied.note_id))
        {
            let message = atende_db::messages::get(self.db(), tenant, id).await?;
            self.publish_message(tenant, EventKind::MessageCreated, updated, &message)
                .await?;
        }
        Ok(())
    }

    /// The note's text with the names of the users, queue and demand it mentions (pt-BR: notes
    /// are stored once for every reader, in the product's language).
    async fn render_note(&self, tenant: TenantId, note: &SystemNote) -> EngineResult<String> {
        let mut names: HashMap<NameRef, String> = HashMap::new();
        for reference in note.names() {
            let name = match reference {
                NameRef::User(id) => atende_db::users::get(self.db(), tenant, id)
                    .await
                    .ok()
                    .map(|u| u.name),
                NameRef::Queue(id) => atende_db::queues::get(self.db(), tenant, id)
                    .await
                    .ok()
                    .map(|q| q.name),
                NameRef::Demand(id) => atende_db::demands::get(self.db(), tenant, id)
                    .await
                    .ok()
                    .map(|d| d.name),
            };
            if let Some(name) = name {
                names.insert(reference, name);
            }
        }
        let lookup = |reference: NameRef| {
            names
                .get(&reference)
                .cloned()
                .unwrap_or_else(|| match reference {
                    NameRef::User(id) => format!("#{id}"),
                    NameRef::Queue(id) => format!("#{id}"),
                    NameRef::Demand(id) => format!("#{id}"),
                })
        };
        Ok(note.render(Locale::PtBr, &lookup))
    }

    /// Closes `id` for a system reason, queuing `message` (when given) before the note, in the
    /// same transaction. `Conflict` when the ticket changed meanwhile.
    pub(crate) async fn system_close(
        &self,
        tenant: TenantId,
        ticket: &Ticket,
        reason: CloseReason,
        message: Option<AutomaticMessage>,
    ) -> EngineResult<Ticket> {
        let acting = Acting {
            actor: Actor::System,
            client: None,
        };
        self.run_transition(
            tenant,
            ticket,
            &acting,
            Command::AutoClose { reason },
            message,
        )
        .await
    }

    /// An automatic open → pending move (e.g. a flow's "transfer to queue"): the owner stays with
    /// `keep_user_on_pending`, else goes to the designated admin with `force_admin_on_pending`.
    pub async fn move_to_pending(&self, tenant: TenantId, id: TicketId) -> EngineResult<Ticket> {
        let ticket = atende_db::tickets::get(self.db(), tenant, id).await?;
        let acting = Acting {
            actor: Actor::System,
            client: None,
        };
        self.run_transition(tenant, &ticket, &acting, Command::MoveToPending, None)
            .await
    }

    /// Called when `user` goes offline or pauses: their pending wallet tickets overflow to the
    /// queue (SPEC §6, `wallet_overflow`), each with its note, audit entry and events. Answers how
    /// many overflowed. Tickets that changed meanwhile are skipped.
    pub async fn on_owner_unavailable(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> EngineResult<usize> {
        let settings = self.settings(tenant).await?;
        if !(settings.force_wallet_routing && settings.wallet_overflow) {
            return Ok(0);
        }
        let mut overflowed = 0;
        let mut default_queues: HashMap<atende_domain::ConnectionId, Option<QueueId>> =
            HashMap::new();
        for id in atende_db::lifecycle::pending_wallet_tickets_of(self.db(), tenant, user).await? {
            let ticket = match atende_db::tickets::get(self.db(), tenant, id).await {
                Ok(ticket) => ticket,
                Err(DbError::NotFound) => continue,
                Err(other) => return Err(other.into()),
            };
            let default_queue = match default_queues.get(&ticket.connection_id) {
                Some(queue) => *queue,
                None => {
                    let queue =
                        atende_db::connections::get(self.db(), tenant, ticket.connection_id)
                            .await?
                            .default_queue_id;
                    default_queues.insert(ticket.connection_id, queue);
                    queue
                }
            };
            let acting = Acting {
                actor: Actor::System,
                client: None,
            };
            let command = Command::OverflowWallet {
                leaving: user,
                default_queue,
            };
            match self
                .run_transition(tenant, &ticket, &acting, command, None)
                .await
            {
                Ok(_) => overflowed += 1,
                // Accepted, closed or overflowed by someone else meanwhile: nothing to do.
                Err(EngineError::InvalidState(_) | EngineError::Conflict(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(overflowed)
    }
}
