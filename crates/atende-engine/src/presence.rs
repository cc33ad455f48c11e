//! Presence of users (SPEC §1), derived only from their live panel connections, never from login:
//! `online` while at least one WebSocket is alive, `paused` on the user's request (only with
//! `allow_pause`), `offline` when the last connection ends or stops sending heartbeats.
//!
//! Every change is written to `users` (routing reads it there), announced to the tenant as a
//! `presence` event, and an owner who stops being available hands their pending wallet tickets on
//! (`on_owner_unavailable`, wallet overflow, SPEC §6).
//!
//! A connection that drops without a clean close (a page navigation, a network blip) keeps its
//! user present for a short grace, so moving between panel pages does not flap presence and
//! overflow wallets. A clean close (code 1000) or a heartbeat timeout ends presence at once.
//!
//! Also kept here: the short-lived, single-use tickets with which an API client opens the live
//! socket (a browser uses its session cookie instead).

use crate::auth::Principal;
use crate::events::{Audience, EventKind};
use crate::{Engine, EngineError, EngineResult};
use atende_db::presence::PresenceChange;
use atende_domain::{Presence, TenantId, UserId, ValidationError};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How often a client sends `{"type":"ping"}` unless it declares its own period.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(20);
/// Shortest and longest period a client may declare (short ones are for tests and fast failover).
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(100);
pub const MAX_HEARTBEAT: Duration = Duration::from_secs(60);
/// A connection silent for this many heartbeat periods is dead (20 s → 60 s by default).
pub const MISSED_HEARTBEATS: u32 = 3;
/// Longest time a dropped connection keeps its user present, waiting for a reconnect.
pub const MAX_RECONNECT_GRACE: Duration = Duration::from_secs(5);
/// Lifetime of a live-socket ticket.
pub const WS_TICKET_TTL: Duration = Duration::from_secs(30);
/// Outstanding live-socket tickets kept at most (a bound on memory, far above real use).
const MAX_WS_TICKETS: usize = 100_000;
/// Presence changes written in one transaction, at most.
const MAX_PRESENCE_BATCH: usize = 512;
/// Wait before writing a presence again after the store refused it.
/// First wait before writing a presence again after the store refused it; it doubles per failure
/// up to a minute, and the change is given up after [`PRESENCE_RETRIES`] (the next change of
/// that user, or the next start, writes the truth again).
const PRESENCE_RETRY: Duration = Duration::from_secs(1);
const PRESENCE_RETRIES: u32 = 10;
/// Longest pause reason, in characters.
pub const MAX_PAUSE_REASON: usize = 200;

/// Timing of one live connection, from the heartbeat period its client declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub period: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            period: DEFAULT_HEARTBEAT,
        }
    }
}

impl Heartbeat {
    /// A client-declared period in milliseconds, clamped to what the server accepts.
    pub fn from_millis(millis: u64) -> Self {
        Self {
            period: Duration::from_millis(millis).clamp(MIN_HEARTBEAT, MAX_HEARTBEAT),
        }
    }

    /// Silence after which the connection is dead.
    pub fn timeout(&self) -> Duration {
        self.period * MISSED_HEARTBEATS
    }

    /// How long a dropped connection keeps its user present: one period, at most
    /// [`MAX_RECONNECT_GRACE`] (a client that beats fast wants a fast verdict).
    pub fn reconnect_grace(&self) -> Duration {
        self.period.min(MAX_RECONNECT_GRACE)
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// Closed on purpose (close code 1000) or declared dead after missed heartbeats: the user
    /// is offline at once when it was their last connection.
    Closed,
    /// Dropped (going away, network error, no close frame): offline only if no connection of the
    /// user comes back within `grace`.
    Dropped { grace: Duration },
}

/// The user's live state: their connections and whether they asked to pause.
#[derive(Default)]
struct UserLive {
    connections: HashSet<u64>,
    pause_reason: Option<Option<String>>,
    /// The last connection dropped and the grace has not run out.
    lingering: bool,
    /// Bumped by every connect, so a grace timer knows whether the user came back.
    epoch: u64,
    /// What was last written and announced.
    published: Option<(Presence, Option<String>)>,
    /// A failed write will be tried again.
    retry_scheduled: bool,
    /// Consecutive failed writes.
    failures: u32,
}

/// One user's live state behind its own lock (held across the store write, so a user's changes
/// reach the store and the event stream in order).
type UserCell = Arc<tokio::sync::Mutex<UserLive>>;

impl UserLive {
    fn effective(&self) -> (Presence, Option<String>) {
        if self.connections.is_empty() && !self.lingering {
            return (Presence::Offline, None);
        }
        match &self.pause_reason {
            Some(reason) => (Presence::Paused, reason.clone()),
            None => (Presence::Online, None),
        }
    }
}

struct PendingWsTicket {
    principal: Principal,
    expires: Instant,
}

/// Live panel connections per user, and the live-socket tickets.
#[derive(Default)]
pub struct PresenceTracker {
    /// Entries are never removed: a user's cell must stay the same object for every task that
    /// holds it (one entry per user who ever connected since start).
    users: Mutex<HashMap<(TenantId, UserId), UserCell>>,
    next_connection: AtomicU64,
    open_connections: AtomicU64,
    ws_tickets: Mutex<HashMap<String, PendingWsTicket>>,
    /// The presence writer, started with the first change.
    writer: OnceLock<mpsc::UnboundedSender<PendingWrite>>,
}

impl PresenceTracker {
    fn cell(&self, tenant: TenantId, user: UserId) -> UserCell {
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        users.entry((tenant, user)).or_default().clone()
    }

    /// Live connections on this node (for metrics and the bench).
    pub fn live_connections(&self) -> u64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    /// A single-use ticket for opening the live socket as `principal`, valid for
    /// [`WS_TICKET_TTL`]. Only its hash is kept.
    pub fn issue_ws_ticket(&self, principal: &Principal) -> EngineResult<String> {
        let bytes: [u8; 32] = rand::random();
        let ticket = format!("wst_{}", hex::encode(bytes));
        let now = Instant::now();
        let mut tickets = self
            .ws_tickets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tickets.retain(|_, pending| pending.expires > now);
        if tickets.len() >= MAX_WS_TICKETS {
            return Err(EngineError::RateLimited {
                retry_after_secs: WS_TICKET_TTL.as_secs(),
            });
        }
        tickets.insert(
            ticket_hash(&ticket),
            PendingWsTicket {
                principal: principal.clone(),
                expires: now + WS_TICKET_TTL,
            },
        );
        Ok(ticket)
    }

    /// Takes a ticket: the principal it was issued to, once; unknown, used or expired → `None`.
    pub fn redeem_ws_ticket(&self, ticket: &str) -> Option<Principal> {
        self.redeem_ws_ticket_at(ticket, Instant::now())
    }

    fn redeem_ws_ticket_at(&self, ticket: &str, now: Instant) -> Option<Principal> {
        if !ticket.starts_with("wst_") || ticket.len() > 100 {
            return None;
        }
        let mut tickets = self
            .ws_tickets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let pending = tickets.remove(&ticket_hash(ticket))?;
        (pending.expires > now).then_some(pending.principal)
    }
}

fn ticket_hash(ticket: &str) -> String {
    hex::encode(Sha256::digest(ticket.as_bytes()))
}

/// One live connection of a user. End it with [`LiveSession::close`]; a session dropped without
/// closing (a cancelled task) counts as dropped.
pub struct LiveSession {
    engine: Engine,
    tenant: TenantId,
    user: UserId,
    id: u64,
    closed: bool,
}

impl LiveSession {
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    pub fn user_id(&self) -> UserId {
        self.user
    }

    /// Pauses the user (all their connections) with an optional reason. Refused unless
    /// `allow_pause`.
    pub async fn pause(&self, reason: Option<&str>) -> EngineResult<()> {
        if !self.engine.settings(self.tenant).await?.allow_pause {
            return Err(EngineError::Forbidden(
                "pausing is not allowed in this company (setting allow_pause)".into(),
            ));
        }
        let reason = reason
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_PAUSE_REASON)
        {
            return Err(ValidationError::field(
                "reason",
                format!("use at most {MAX_PAUSE_REASON} characters"),
            )
            .into());
        }
        self.engine
            .change_presence(self.tenant, self.user, |live| {
                live.pause_reason = Some(reason)
            })
            .await
    }

    /// Ends a pause.
    pub async fn resume(&self) -> EngineResult<()> {
        self.engine
            .change_presence(self.tenant, self.user, |live| live.pause_reason = None)
            .await
    }

    /// Ends this connection; the user goes offline when it was their last one (see [`Departure`]).
    pub async fn close(mut self, how: Departure) -> EngineResult<()> {
        self.closed = true;
        self.engine
            .presence_depart(self.tenant, self.user, self.id, how)
            .await
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let (engine, tenant, user, id) = (self.engine.clone(), self.tenant, self.user, self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let how = Departure::Dropped {
                    grace: Heartbeat::default().reconnect_grace(),
                };
                if let Err(error) = engine.presence_depart(tenant, user, id, how).await {
                    tracing::warn!(%error, %user, "presence after a dropped connection");
                }
            });
        }
    }
}

/// A presence change waiting for the writer, and who waits for it.
struct PendingWrite {
    change: PresenceChange,
    done: oneshot::Sender<Option<bool>>,
}

/// Writes presence changes in batches: whatever queued up while the previous batch was written
/// goes in the next transaction (group commit). Under a reconnect storm thousands of users change
/// at once; one by one, each write would wait its turn for the store's writer behind a busy
/// scheduler. Ends when the tracker (and with it the sender) is dropped.
fn spawn_presence_writer(db: atende_db::Db) -> mpsc::UnboundedSender<PendingWrite> {
    let (sender, mut queue) = mpsc::unbounded_channel::<PendingWrite>();
    tokio::spawn(async move {
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_PRESENCE_BATCH {
                match queue.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let changes: Vec<PresenceChange> =
                batch.iter().map(|pending| pending.change.clone()).collect();
            let outcome = atende_db::presence::platform_set_many(&db, &changes).await;
            if let Err(error) = &outcome {
                tracing::warn!(%error, users = changes.len(), "cannot record presence; retrying");
            }
            for (index, pending) in batch.into_iter().enumerate() {
                let found = outcome
                    .as_ref()
                    .ok()
                    .map(|found| found.get(index).copied().unwrap_or(false));
                let _ = pending.done.send(found);
            }
        }
    });
    sender
}

impl Engine {
    /// Clears presence left by an earlier run: nobody is connected to a server that just started.
    pub async fn reset_presence(&self) -> EngineResult<()> {
        let cleared = atende_db::presence::platform_reset_all(self.db()).await?;
        if cleared > 0 {
            tracing::info!(users = cleared, "presence of the previous run cleared");
        }
        Ok(())
    }

    /// Registers a live connection of `user`; they become online (or stay paused) at once.
    pub async fn presence_connect(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> EngineResult<LiveSession> {
        let tracker = self.presence();
        let id = tracker.next_connection.fetch_add(1, Ordering::Relaxed);
        tracker.open_connections.fetch_add(1, Ordering::Relaxed);
        // The session exists before the change, so a failure below still ends the connection.
        let session = LiveSession {
            engine: self.clone(),
            tenant,
            user,
            id,
            closed: false,
        };
        self.change_presence(tenant, user, |live| {
            live.connections.insert(id);
            live.lingering = false;
            live.epoch += 1;
        })
        .await?;
        Ok(session)
    }

    async fn presence_depart(
        &self,
        tenant: TenantId,
        user: UserId,
        id: u64,
        how: Departure,
    ) -> EngineResult<()> {
        self.presence()
            .open_connections
            .fetch_sub(1, Ordering::Relaxed);
        let mut linger_epoch = None;
        self.change_presence(tenant, user, |live| {
            live.connections.remove(&id);
            if live.connections.is_empty() {
                match how {
                    Departure::Closed => live.lingering = false,
                    Departure::Dropped { .. } => {
                        live.lingering = true;
                        linger_epoch = Some(live.epoch);
                    }
                }
            }
        })
        .await?;
        if let (Some(epoch), Departure::Dropped { grace }) = (linger_epoch, how) {
            let engine = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let outcome = engine
                    .change_presence(tenant, user, |live| {
                        if live.epoch == epoch && live.connections.is_empty() {
                            live.lingering = false;
                        }
                    })
                    .await;
                if let Err(error) = outcome {
                    tracing::warn!(%error, %user, "presence after the reconnect grace");
                }
            });
        }
        Ok(())
    }

    /// Applies `change` to the user's live state under their lock, then writes, announces and
    /// acts on the resulting presence if it differs from what was last announced. One user's
    /// changes are serialised, so the store and the events follow the same order as the changes.
    async fn change_presence(
        &self,
        tenant: TenantId,
        user: UserId,
        change: impl FnOnce(&mut UserLive),
    ) -> EngineResult<()> {
        let cell = self.presence().cell(tenant, user);
        let mut live = cell.lock().await;
        change(&mut live);
        let now = live.effective();
        if now.0 == Presence::Offline {
            // A pause ends with the user's last connection: they come back online.
            live.pause_reason = None;
        }
        let before = live
            .published
            .clone()
            .map(|(p, _)| p)
            .unwrap_or(Presence::Offline);
        if live.published.as_ref() == Some(&now)
            || (live.published.is_none() && now.0 == Presence::Offline)
        {
            live.published = Some(now);
            return Ok(());
        }
        let (presence, reason) = now.clone();
        let change = PresenceChange {
            tenant,
            user,
            presence,
            pause_reason: reason.clone(),
        };
        match self.write_presence(change).await {
            Some(true) => {}
            // The user was deleted meanwhile: nothing to record or announce.
            Some(false) => return Ok(()),
            None => {
                // The connection itself is fine: keep it, and write the presence again shortly
                // (it is still unpublished, so the retry sees the difference).
                live.failures += 1;
                if live.failures > PRESENCE_RETRIES {
                    tracing::error!(%user, "presence not recorded after {PRESENCE_RETRIES} retries; giving up");
                    live.failures = 0;
                } else if !live.retry_scheduled {
                    live.retry_scheduled = true;
                    let wait = PRESENCE_RETRY
                        .saturating_mul(1 << (live.failures - 1).min(6))
                        .min(Duration::from_secs(60));
                    self.retry_presence(tenant, user, wait);
                }
                return Ok(());
            }
        }
        live.published = Some(now);
        live.failures = 0;
        self.events().publish(
            tenant,
            EventKind::Presence,
            serde_json::json!({ "user_id": user, "presence": presence, "pause_reason": reason }),
            Audience::Tenant,
        );
        drop(live);
        tracing::debug!(%tenant, %user, %presence, "presence changed");
        if before == Presence::Online && presence != Presence::Online {
            self.owner_became_unavailable(tenant, user).await;
        }
        Ok(())
    }

    /// Hands a change to the presence writer and waits for it to be stored: `Some(found)`, or
    /// `None` when the store failed (the writer logged why).
    async fn write_presence(&self, change: PresenceChange) -> Option<bool> {
        let writer = self
            .presence()
            .writer
            .get_or_init(|| spawn_presence_writer(self.db().clone()));
        let (done, stored) = oneshot::channel();
        writer.send(PendingWrite { change, done }).ok()?;
        stored.await.ok()?
    }

    fn retry_presence(&self, tenant: TenantId, user: UserId, wait: Duration) {
        let engine = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let retried = engine
                .change_presence(tenant, user, |live| live.retry_scheduled = false)
                .await;
            if let Err(error) = retried {
                tracing::warn!(%error, %user, "presence retry");
            }
        });
    }

    /// Wallet overflow for an owner who went offline or paused (SPEC §6). Its failure must not
    /// break the presence change that caused it.
    async fn owner_became_unavailable(&self, tenant: TenantId, user: UserId) {
        match self.on_owner_unavailable(tenant, user).await {
            Ok(0) => {}
            Ok(overflowed) => {
                tracing::info!(%user, overflowed, "wallet tickets overflowed: their owner is unavailable")
            }
            Err(error) => {
                tracing::warn!(%error, %user, "wallet overflow after the owner became unavailable")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_periods_are_clamped_and_set_the_timeout_and_grace() {
        let default = Heartbeat::default();
        assert_eq!(default.timeout(), Duration::from_secs(60));
        assert_eq!(default.reconnect_grace(), MAX_RECONNECT_GRACE);
        assert_eq!(Heartbeat::from_millis(1).period, MIN_HEARTBEAT);
        assert_eq!(Heartbeat::from_millis(10_000_000).period, MAX_HEARTBEAT);
        let fast = Heartbeat::from_millis(300);
        assert_eq!(fast.timeout(), Duration::from_millis(900));
        assert_eq!(fast.reconnect_grace(), Duration::from_millis(300));
    }

    fn principal() -> Principal {
        Principal {
            user: atende_domain::User {
                id: UserId(7),
                tenant_id: Some(TenantId(1)),
                email: "agent@example.test".into(),
                name: "Agent".into(),
                profile: Some(atende_domain::Profile::User),
                is_superadmin: false,
                queue_ids: Vec::new(),
                business_hours: None,
                timezone: None,
                presence: Presence::Offline,
                pause_reason: None,
                locale: "pt-BR".into(),
                created_at: atende_domain::Timestamp(0),
                updated_at: atende_domain::Timestamp(0),
            },
            token_id: atende_domain::SessionId(1),
            token_hash: "hash".into(),
            kind: atende_domain::TokenKind::Api,
        }
    }

    #[test]
    fn ws_tickets_work_once_for_their_user() {
        let tracker = PresenceTracker::default();
        let ticket = tracker.issue_ws_ticket(&principal()).unwrap_or_default();
        assert!(ticket.starts_with("wst_"));
        let redeemed = tracker.redeem_ws_ticket(&ticket).map(|p| p.user.id);
        assert_eq!(redeemed, Some(UserId(7)));
        assert!(
            tracker.redeem_ws_ticket(&ticket).is_none(),
            "a ticket works once"
        );
        assert!(tracker.redeem_ws_ticket("wst_unknown").is_none());
    }

    #[test]
    fn ws_tickets_expire_after_thirty_seconds() {
        let tracker = PresenceTracker::default();
        let fresh = tracker.issue_ws_ticket(&principal()).unwrap_or_default();
        let stale = tracker.issue_ws_ticket(&principal()).unwrap_or_default();
        let later = Instant::now() + Duration::from_secs(29);
        assert!(tracker.redeem_ws_ticket_at(&fresh, later).is_some());
        let too_late = Instant::now() + WS_TICKET_TTL + Duration::from_secs(1);
        assert!(tracker.redeem_ws_ticket_at(&stale, too_late).is_none());
    }

    #[test]
    fn presence_follows_connections_pause_and_grace() {
        let mut live = UserLive::default();
        assert_eq!(live.effective(), (Presence::Offline, None));
        live.connections.insert(1);
        assert_eq!(live.effective(), (Presence::Online, None));
        live.pause_reason = Some(Some("lunch".into()));
        assert_eq!(live.effective(), (Presence::Paused, Some("lunch".into())));
        live.connections.clear();
        live.lingering = true;
        assert_eq!(
            live.effective().0,
            Presence::Paused,
            "a dropped connection lingers"
        );
        live.lingering = false;
        assert_eq!(live.effective(), (Presence::Offline, None));
    }
}
