//! The event bus: what happened in a tenant (ticket created, status changed, message stored,
//! presence…), numbered per tenant, kept for a while so a client that reconnects with `since` misses
//! nothing, and fanned out to live subscribers. Who may receive an event is decided by the
//! visibility rule (`atende_domain::visibility`) on the facts each event carries.
//!
//! In-process for one node. Ids start from the boot time in milliseconds × 1000, so they keep
//! increasing across restarts and a `since` from before a restart is detectably too old.

use atende_domain::visibility::TicketFacts;
use atende_domain::{TenantId, TicketId, Timestamp, UserId};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events kept per tenant for replay.
pub const RETENTION: usize = 10_000;
/// Buffer of each live subscription; a subscriber that falls this far behind must resync.
const CHANNEL_CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventKind {
    #[serde(rename = "ticket.created")]
    TicketCreated,
    #[serde(rename = "ticket.updated")]
    TicketUpdated,
    #[serde(rename = "ticket.status_changed")]
    TicketStatusChanged,
    #[serde(rename = "message.created")]
    MessageCreated,
    #[serde(rename = "message.updated")]
    MessageUpdated,
    #[serde(rename = "presence")]
    Presence,
    #[serde(rename = "settings.changed")]
    SettingsChanged,
    #[serde(rename = "connection.status")]
    ConnectionStatus,
}

/// Who an event is about, for filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Everyone in the tenant (presence, settings, connection status).
    Tenant,
    /// Users who may see the ticket now, and those who could see it before the change (they get
    /// told it left their view).
    Ticket {
        ticket_id: TicketId,
        facts: TicketFacts,
        before: Option<TicketFacts>,
    },
    /// One user only.
    User(UserId),
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Increasing per tenant.
    pub id: i64,
    #[serde(skip)]
    pub tenant: TenantId,
    pub kind: EventKind,
    pub at: Timestamp,
    /// The changed object as the API shows it (a ticket, a message, a presence entry).
    pub data: serde_json::Value,
    #[serde(skip)]
    pub audience: Audience,
}

/// Replay answer for a reconnecting client.
#[derive(Debug)]
pub enum Replay {
    /// Every event after `since`, in order.
    Events(Vec<Arc<Event>>),
    /// `since` is older than what is kept: reload state, then follow live events.
    Resync,
}

struct TenantLog {
    next_id: i64,
    recent: VecDeque<Arc<Event>>,
    live: broadcast::Sender<Arc<Event>>,
}

pub struct EventBus {
    first_id: i64,
    tenants: Mutex<HashMap<TenantId, TenantLog>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        Self {
            first_id: Timestamp::now().millis().saturating_mul(1000),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    fn with_log<R>(&self, tenant: TenantId, f: impl FnOnce(&mut TenantLog) -> R) -> R {
        let mut tenants = self
            .tenants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let log = tenants.entry(tenant).or_insert_with(|| TenantLog {
            next_id: self.first_id + 1,
            recent: VecDeque::with_capacity(64),
            live: broadcast::channel(CHANNEL_CAPACITY).0,
        });
        f(log)
    }

    /// Numbers, keeps and broadcasts an event; returns it.
    pub fn publish(
        &self,
        tenant: TenantId,
        kind: EventKind,
        data: serde_json::Value,
        audience: Audience,
    ) -> Arc<Event> {
        self.with_log(tenant, |log| {
            let event = Arc::new(Event {
                id: log.next_id,
                tenant,
                kind,
                at: Timestamp::now(),
                data,
                audience,
            });
            log.next_id += 1;
            if log.recent.len() == RETENTION {
                log.recent.pop_front();
            }
            log.recent.push_back(event.clone());
            // No receivers is fine: nobody is connected.
            let _ = log.live.send(event.clone());
            event
        })
    }

    /// Live events of a tenant from now on.
    pub fn subscribe(&self, tenant: TenantId) -> broadcast::Receiver<Arc<Event>> {
        self.with_log(tenant, |log| log.live.subscribe())
    }

    /// Subscribes and replays atomically, so no event falls between the replay and the live feed.
    pub fn subscribe_since(
        &self,
        tenant: TenantId,
        since: i64,
    ) -> (Replay, broadcast::Receiver<Arc<Event>>) {
        self.with_log(tenant, |log| {
            let receiver = log.live.subscribe();
            let last = log.next_id - 1;
            let oldest_kept = log.recent.front().map(|e| e.id).unwrap_or(log.next_id);
            let replay = if since >= last {
                if since > last {
                    Replay::Resync
                } else {
                    Replay::Events(Vec::new())
                }
            } else if since + 1 < oldest_kept {
                Replay::Resync
            } else {
                Replay::Events(
                    log.recent
                        .iter()
                        .filter(|e| e.id > since)
                        .cloned()
                        .collect(),
                )
            };
            (replay, receiver)
        })
    }

    /// The id of the newest event of the tenant (what a fresh client passes as `since` later).
    pub fn last_id(&self, tenant: TenantId) -> i64 {
        self.with_log(tenant, |log| log.next_id - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(bus: &EventBus, tenant: TenantId) -> Arc<Event> {
        bus.publish(
            tenant,
            EventKind::Presence,
            serde_json::json!({}),
            Audience::Tenant,
        )
    }

    #[test]
    fn ids_increase_per_tenant() {
        let bus = EventBus::new();
        let a1 = publish(&bus, TenantId(1));
        let a2 = publish(&bus, TenantId(1));
        let b1 = publish(&bus, TenantId(2));
        assert!(a2.id > a1.id);
        assert_eq!(b1.id, a1.id, "each tenant counts on its own");
    }

    #[test]
    fn reconnect_replays_what_was_missed() {
        let bus = EventBus::new();
        let first = publish(&bus, TenantId(1));
        let second = publish(&bus, TenantId(1));
        let third = publish(&bus, TenantId(1));
        match bus.subscribe_since(TenantId(1), first.id).0 {
            Replay::Events(events) => assert_eq!(
                events.iter().map(|e| e.id).collect::<Vec<_>>(),
                vec![second.id, third.id]
            ),
            Replay::Resync => panic!("expected a replay"),
        }
        assert!(
            matches!(bus.subscribe_since(TenantId(1), third.id).0, Replay::Events(ref e) if e.is_empty())
        );
    }

    #[test]
    fn too_old_or_future_since_asks_for_resync() {
        let bus = EventBus::new();
        let first = publish(&bus, TenantId(1));
        for _ in 0..RETENTION {
            publish(&bus, TenantId(1));
        }
        assert!(matches!(
            bus.subscribe_since(TenantId(1), first.id - 1).0,
            Replay::Resync
        ));
        assert!(matches!(
            bus.subscribe_since(TenantId(1), i64::MAX - 1).0,
            Replay::Resync
        ));
    }

    #[tokio::test]
    async fn live_subscribers_receive_published_events() {
        let bus = EventBus::new();
        let mut live = bus.subscribe(TenantId(5));
        let sent = publish(&bus, TenantId(5));
        let received = live.recv().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(received.id, sent.id);
    }
}
