//! What one live connection receives of an event (SPEC §5, §13): THE visibility rule, applied
//! to the facts each event carries. A ticket event reaches a user whose visibility plan admits the
//! ticket; a user who could see it before the change and no longer can gets `ticket.hidden`, so
//! the panel drops it at once; nobody else hears of it. A user who may not read a pending ticket's
//! messages (no `spy`) still hears that a message arrived, without its body.
//!
//! [`deliver`] is pure; [`Engine::live_viewer`] gathers what it needs for one user.

use crate::auth::Principal;
use crate::events::{Audience, Event, EventKind};
use crate::{Engine, EngineError, EngineResult};
use atende_domain::settings::Settings;
use atende_domain::visibility::{self, MessageAccess, Plan, VisibilitySettings};
use atende_domain::{TicketId, Timestamp, UserId};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Type of the frame that tells a viewer a ticket left their view.
pub const TICKET_HIDDEN: &str = "ticket.hidden";

/// One user's view of the event stream, valid until their settings, profile or queues change.
#[derive(Debug, Clone)]
pub struct LiveViewer {
    pub user_id: UserId,
    pub plan: Plan,
    pub visibility: VisibilitySettings,
    /// `spy` is in `feature_controls`.
    pub spy: bool,
    /// The settings the plan was built from, to notice a change cheaply.
    settings: Option<Arc<Settings>>,
}

impl LiveViewer {
    /// A viewer from its parts (the engine builds real ones with [`Engine::live_viewer`]).
    pub fn new(plan: Plan, visibility: VisibilitySettings, spy: bool) -> Self {
        Self {
            user_id: plan.viewer.user_id,
            plan,
            visibility,
            spy,
            settings: None,
        }
    }

    /// Whether `settings` (from [`Engine::settings`]) are the ones this view was built from.
    pub fn built_from(&self, settings: &Arc<Settings>) -> bool {
        self.settings
            .as_ref()
            .is_some_and(|mine| Arc::ptr_eq(mine, settings))
    }
}

/// What to send one viewer for one event.
#[derive(Debug, Clone)]
pub enum Frame {
    /// The event as published.
    Event(Arc<Event>),
    /// The event with its message body removed (the viewer may not read it).
    Redacted { event: Arc<Event>, data: Value },
    /// The ticket left the viewer's view with this event.
    Hidden {
        id: i64,
        at: Timestamp,
        ticket_id: TicketId,
    },
}

/// The wire form of every event frame: `{id, type, at, data}`.
#[derive(Serialize)]
struct Wire<'a, K: Serialize> {
    id: i64,
    #[serde(rename = "type")]
    kind: K,
    at: Timestamp,
    data: &'a Value,
}

impl Frame {
    pub fn id(&self) -> i64 {
        match self {
            Frame::Event(event) | Frame::Redacted { event, .. } => event.id,
            Frame::Hidden { id, .. } => *id,
        }
    }

    /// The JSON text sent over the socket.
    pub fn to_json(&self) -> String {
        match self {
            Frame::Event(event) => event_json(event),
            Frame::Redacted { event, data } => to_text(&Wire {
                id: event.id,
                kind: event.kind,
                at: event.at,
                data,
            }),
            Frame::Hidden { id, at, ticket_id } => to_text(&Wire {
                id: *id,
                kind: TICKET_HIDDEN,
                at: *at,
                data: &serde_json::json!({ "ticket_id": ticket_id }),
            }),
        }
    }
}

/// The JSON of an event sent as published: the same text for every viewer who gets it whole, so
/// callers may serialise it once and share it.
pub fn event_json(event: &Event) -> String {
    to_text(&Wire {
        id: event.id,
        kind: event.kind,
        at: event.at,
        data: &event.data,
    })
}

fn to_text(wire: &impl Serialize) -> String {
    // Serialising a `Value` with plain fields cannot fail.
    serde_json::to_string(wire).unwrap_or_default()
}

/// What `viewer` receives of `event`, if anything.
pub fn deliver(viewer: &LiveViewer, event: &Arc<Event>) -> Option<Frame> {
    match &event.audience {
        Audience::Tenant => Some(Frame::Event(event.clone())),
        Audience::User(user) => (*user == viewer.user_id).then(|| Frame::Event(event.clone())),
        Audience::Ticket {
            ticket_id,
            facts,
            before,
        } => {
            if viewer.plan.admits(facts) {
                let is_message = matches!(
                    event.kind,
                    EventKind::MessageCreated | EventKind::MessageUpdated
                );
                let access = visibility::message_access(
                    &viewer.plan.viewer,
                    facts,
                    &viewer.visibility,
                    viewer.spy,
                );
                if is_message && access == MessageAccess::None {
                    return Some(Frame::Redacted {
                        event: event.clone(),
                        data: without_body(&event.data),
                    });
                }
                Some(Frame::Event(event.clone()))
            } else if before
                .as_ref()
                .is_some_and(|before| viewer.plan.admits(before))
            {
                Some(Frame::Hidden {
                    id: event.id,
                    at: event.at,
                    ticket_id: *ticket_id,
                })
            } else {
                None
            }
        }
    }
}

/// A message reduced to what tells the panel that it exists: ids and times, no content.
fn without_body(message: &Value) -> Value {
    let mut kept = Map::new();
    for key in ["id", "ticket_id", "sent_at", "created_at"] {
        if let Some(value) = message.get(key) {
            kept.insert(key.to_owned(), value.clone());
        }
    }
    kept.insert("redacted".to_owned(), Value::Bool(true));
    Value::Object(kept)
}

impl Engine {
    /// The live view of `principal` as of now: their profile and queues as stored, the tenant's
    /// settings. A principal whose token was revoked, whose user was deleted or whose company
    /// was suspended → `Unauthenticated`, so the socket ends with the session.
    pub async fn live_viewer(&self, principal: &Principal) -> EngineResult<LiveViewer> {
        let tenant = principal.tenant()?;
        let token = atende_db::tokens::platform_find_by_hash(
            self.db(),
            &principal.token_hash,
            Timestamp::now(),
        )
        .await?;
        if token.is_none()
            || atende_db::tenants::platform_get(self.db(), tenant)
                .await?
                .suspended
        {
            return Err(EngineError::Unauthenticated);
        }
        let user = match atende_db::users::get(self.db(), tenant, principal.user_id()).await {
            Ok(user) => user,
            Err(atende_db::DbError::NotFound) => return Err(EngineError::Unauthenticated),
            Err(other) => return Err(other.into()),
        };
        // The profile and queues as stored now, not as they were when the socket opened.
        let current = Principal {
            user,
            ..principal.clone()
        };
        let settings = self.settings(tenant).await?;
        let plan = self.viewer_plan(&current).await?;
        Ok(LiveViewer {
            user_id: current.user_id(),
            plan,
            visibility: VisibilitySettings::from(&*settings),
            spy: settings.feature_controls.spy,
            settings: Some(settings),
        })
    }
}
