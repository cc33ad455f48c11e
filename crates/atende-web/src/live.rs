//! The live WebSocket `GET /api/v1/events` (SPEC §13) and `POST /api/v1/auth/ws-ticket`.
//!
//! A browser opens the socket with its session cookie (from our own pages only: a cross-site
//! `Origin` is refused, since browsers send cookies on cross-site WebSocket handshakes); an API
//! client first trades its Bearer token for a single-use ticket valid 30 s and opens
//! `/api/v1/events?ticket=…` (a Bearer header on the handshake is accepted too). Failures answer
//! 401/403 before the upgrade.
//!
//! Frames from the server: `{"type":"hello","last_id":N}` (or `resync` when `since` is too old, in
//! the future, or the connection fell too far behind: reload, then follow), then events
//! `{id,type,at,data}` filtered by the visibility rule (`atende_engine::live_filter`). Frames from
//! the client: `{"type":"ping"}` every heartbeat period (20 s; `?heartbeat_ms=` declares another,
//! 100 ms–60 s; three periods of silence end the connection), `{"type":"pause","reason":…}` and
//! `{"type":"resume"}`. The connection is the user's presence (`atende_engine::presence`).
//!
//! The viewer's visibility plan is rebuilt when the tenant's settings change (checked on each
//! ticket event: a pointer comparison with the cached settings) and every [`VIEW_REFRESH`] for
//! profile and queue changes; the same refresh ends the socket when its session was revoked.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Query, SESSION_COOKIE, cookie};
use crate::state::AppState;
use atende_domain::TenantId;
use atende_engine::auth::Principal;
use atende_engine::events::{Event, EventBus, EventKind, Replay};
use atende_engine::live_filter::{self, Frame, LiveViewer};
use atende_engine::presence::{Departure, Heartbeat, WS_TICKET_TTL};
use atende_engine::{Engine, EngineError};
use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use futures::SinkExt;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use utoipa::ToSchema;

/// How often a connection re-reads its user's profile and queues (and checks its session).
pub const VIEW_REFRESH: Duration = Duration::from_secs(10);
/// Largest frame a client may send (they send only small control frames).
const MAX_CLIENT_FRAME: usize = 16 * 1024;
/// Read buffer per socket. tungstenite's default (128 KiB) is allocated per connection and
/// zero-filled on every read: with thousands of sockets that was most of the fan-out's CPU time
/// and of the server's memory. Client frames are tiny.
const READ_BUFFER: usize = 4 * 1024;
/// Close codes of our own (4000–4999 are for applications).
const CLOSE_SESSION_ENDED: u16 = 4001;
const CLOSE_HEARTBEAT_MISSED: u16 = 4008;
/// Events written to one socket with a single flush, at most.
const MAX_BATCH: usize = 256;

pub fn routes() -> Router<AppState> {
    let frames = Arc::new(SharedFrames::default());
    Router::new()
        .route(
            "/api/v1/events",
            get(move |state, query, request| events(state, query, request, frames.clone())),
        )
        .route("/api/v1/auth/ws-ticket", post(ws_ticket))
}

/// Recent events as sent whole, shared by every connection of this app: an event fanned out to
/// thousands of sockets is serialised once, not once per socket. One slot per event id modulo
/// the size, so a lookup is one comparison.
struct SharedFrames {
    slots: Mutex<Vec<Option<(TenantId, i64, Utf8Bytes)>>>,
}

/// Events kept serialised; connections lag each other by a few events at most.
const SHARED_FRAMES: usize = 1024;

impl Default for SharedFrames {
    fn default() -> Self {
        Self {
            slots: Mutex::new(vec![None; SHARED_FRAMES]),
        }
    }
}

impl SharedFrames {
    fn text(&self, event: &Event) -> Utf8Bytes {
        let slot = usize::try_from(event.id.rem_euclid(SHARED_FRAMES as i64)).unwrap_or(0);
        let key = (event.tenant, event.id);
        if let Some(Some((tenant, id, text))) = self.lock().get(slot)
            && (*tenant, *id) == key
        {
            return text.clone();
        }
        // Serialised outside the lock; connections racing here both serialise, harmlessly.
        let text = Utf8Bytes::from(live_filter::event_json(event));
        if let Some(entry) = self.lock().get_mut(slot) {
            *entry = Some((event.tenant, event.id, text.clone()));
        }
        text
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<(TenantId, i64, Utf8Bytes)>>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Serialize, ToSchema)]
pub struct WsTicketOutput {
    /// Pass as `/api/v1/events?ticket=…` within `expires_in` seconds; works once.
    ticket: String,
    expires_in: u64,
}

/// Trades the caller's credentials for a single-use ticket that opens the live socket (a
/// WebSocket handshake from a browser cannot carry a Bearer header).
#[utoipa::path(post, path = "/api/v1/auth/ws-ticket", tag = "auth",
    responses((status = 200, body = WsTicketOutput), (status = 401), (status = 403)))]
pub async fn ws_ticket(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<WsTicketOutput>> {
    principal.tenant()?;
    let ticket = state.engine.presence().issue_ws_ticket(&principal)?;
    Ok(axum::Json(WsTicketOutput {
        ticket,
        expires_in: WS_TICKET_TTL.as_secs(),
    }))
}

#[derive(Deserialize)]
struct EventsQuery {
    /// The id of the last event the client saw: replay what came after it.
    since: Option<i64>,
    /// A ticket from `POST /api/v1/auth/ws-ticket`.
    ticket: Option<String>,
    /// The client's ping period in milliseconds (default 20000).
    heartbeat_ms: Option<u64>,
}

/// Opens the live event stream of the caller (see the module documentation).
async fn events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
    request: Request,
    frames: Arc<SharedFrames>,
) -> ApiResult<Response> {
    let (mut parts, _) = request.into_parts();
    let principal = authenticate(&state, &mut parts, query.ticket.as_deref()).await?;
    let viewer = state.engine.live_viewer(&principal).await?;
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &state)
        .await
        .map_err(|rejection| {
            ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "upgrade_required",
                format!("open this URL as a WebSocket: {}", rejection.body_text()),
            )
        })?;
    let heartbeat = query
        .heartbeat_ms
        .map(Heartbeat::from_millis)
        .unwrap_or_default();
    let engine = state.engine.clone();
    let since = query.since;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_FRAME)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| async move {
            Connection::run(engine, frames, principal, viewer, since, heartbeat, socket).await;
        }))
}

/// A ticket, else what every API route accepts (a Bearer header, or the session cookie, here
/// only from one of our own pages).
async fn authenticate(
    state: &AppState,
    parts: &mut Parts,
    ticket: Option<&str>,
) -> ApiResult<Principal> {
    if let Some(ticket) = ticket {
        return state.engine.presence().redeem_ws_ticket(ticket).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the live ticket is unknown, used or expired: ask POST /api/v1/auth/ws-ticket for a new one",
            )
        });
    }
    // The API's CSRF check covers state-changing methods only; a WebSocket handshake is a GET
    // that opens a channel, so the cookie is checked here.
    let by_cookie = !parts.headers.contains_key(header::AUTHORIZATION)
        && cookie(parts, SESSION_COOKIE).is_some();
    if by_cookie && cross_site(&parts.headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "live connections with the session cookie must come from this site's pages",
        ));
    }
    let Auth(principal) = Auth::from_request_parts(parts, state).await?;
    Ok(principal)
}

/// A handshake a browser made for another site's page. Browsers always send `Origin` on
/// WebSocket handshakes; a client without one is not a browser and cannot be tricked into
/// sending our cookie.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && site != "same-origin"
        && site != "none"
    {
        return true;
    }
    match text(header::ORIGIN) {
        None => false,
        Some(origin) => {
            let host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            host.is_none() || host != text(header::HOST)
        }
    }
}

/// What the client may send.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientFrame {
    Ping,
    Pause {
        #[serde(default)]
        reason: Option<String>,
    },
    Resume,
}

/// Control frames of the server (events have their own shape, see `live_filter`).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame<'a> {
    Hello { last_id: i64 },
    Resync { last_id: i64 },
    Pong,
    Error { code: &'a str, message: &'a str },
}

impl ServerFrame<'_> {
    fn message(&self) -> Message {
        Message::Text(serde_json::to_string(self).unwrap_or_default().into())
    }
}

/// Why a connection loop ended.
enum End {
    /// The client went away (with or without a close frame).
    Client(Departure),
    /// We end it: the session was revoked, the heartbeat stopped, or the bus closed.
    Server { code: u16, reason: &'static str },
}

/// One live socket: its viewer, subscription and presence.
struct Connection {
    engine: Engine,
    frames: Arc<SharedFrames>,
    principal: Principal,
    tenant: TenantId,
    viewer: LiveViewer,
    viewer_built: Instant,
    heartbeat: Heartbeat,
    socket: WebSocket,
    last_heard: Instant,
}

impl Connection {
    async fn run(
        engine: Engine,
        frames: Arc<SharedFrames>,
        principal: Principal,
        viewer: LiveViewer,
        since: Option<i64>,
        heartbeat: Heartbeat,
        socket: WebSocket,
    ) {
        let Ok(tenant) = principal.tenant() else {
            return;
        };
        let user = principal.user_id();
        let mut connection = Connection {
            engine: engine.clone(),
            frames,
            principal,
            tenant,
            viewer,
            viewer_built: Instant::now(),
            heartbeat,
            socket,
            last_heard: Instant::now(),
        };
        // Subscribe before announcing presence, so the user also hears their own change.
        let (intro, replay, receiver) = subscribe(engine.events(), tenant, since);
        let session = match engine.presence_connect(tenant, user).await {
            Ok(session) => session,
            Err(error) => {
                tracing::error!(%error, %user, "cannot record presence; closing the live socket");
                let _ = connection
                    .close(close_code::ERROR, "internal error; try again")
                    .await;
                return;
            }
        };
        tracing::debug!(%tenant, %user, "live socket open");
        let end = connection.serve(intro, replay, receiver, &session).await;
        let departure = match end {
            End::Client(departure) => departure,
            End::Server { code, reason } => {
                let _ = connection.close(code, reason).await;
                Departure::Closed
            }
        };
        tracing::debug!(%tenant, %user, ?departure, "live socket closed");
        if let Err(error) = session.close(departure).await {
            tracing::warn!(%error, %user, "presence after a closed live socket");
        }
    }

    async fn serve(
        &mut self,
        intro: ServerFrame<'static>,
        replay: Vec<Arc<Event>>,
        mut receiver: broadcast::Receiver<Arc<Event>>,
        session: &atende_engine::presence::LiveSession,
    ) -> End {
        if let Err(end) = self.start(intro, replay).await {
            return end;
        }
        let mut tick = tokio::time::interval((self.heartbeat.period / 2).min(VIEW_REFRESH));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let outcome = tokio::select! {
                incoming = self.socket.recv() => self.heard(incoming, session).await,
                event = receiver.recv() => self.deliver_batch(event, &mut receiver).await,
                _ = tick.tick() => self.check().await,
            };
            if let Err(end) = outcome {
                return end;
            }
        }
    }

    async fn start(
        &mut self,
        intro: ServerFrame<'static>,
        replay: Vec<Arc<Event>>,
    ) -> Result<(), End> {
        let mut out = vec![intro.message()];
        for event in replay {
            self.render(&event, &mut out).await?;
        }
        self.write(out).await
    }

    /// Sends `first` and whatever else is already waiting (up to [`MAX_BATCH`] events) with one
    /// flush: under a burst (a reconnect storm's presence events) a socket costs one write per
    /// batch instead of one per event, and events the viewer may not see cost no write at all.
    async fn deliver_batch(
        &mut self,
        first: Result<Arc<Event>, RecvError>,
        receiver: &mut broadcast::Receiver<Arc<Event>>,
    ) -> Result<(), End> {
        let mut out = Vec::new();
        let mut next = first;
        let mut taken = 0;
        loop {
            match next {
                Ok(event) => self.render(&event, &mut out).await?,
                Err(RecvError::Lagged(missed)) => {
                    tracing::info!(user = %self.principal.user_id(), missed, "live socket fell behind; asking it to resync");
                    let (last_id, between, fresh) =
                        fresh_subscription(self.engine.events(), self.tenant);
                    *receiver = fresh;
                    // What was rendered before the gap is stale for a client about to reload.
                    out.clear();
                    out.push(ServerFrame::Resync { last_id }.message());
                    for event in between {
                        self.render(&event, &mut out).await?;
                    }
                }
                Err(RecvError::Closed) => {
                    return Err(End::Server {
                        code: close_code::RESTART,
                        reason: "the server is stopping",
                    });
                }
            }
            taken += 1;
            if taken == MAX_BATCH {
                break;
            }
            next = match receiver.try_recv() {
                Ok(event) => Ok(event),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
        }
        self.write(out).await
    }

    /// A frame from the client.
    async fn heard(
        &mut self,
        incoming: Option<Result<Message, axum::Error>>,
        session: &atende_engine::presence::LiveSession,
    ) -> Result<(), End> {
        self.last_heard = Instant::now();
        let text = match incoming {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(()),
            Some(Ok(Message::Binary(_))) => {
                return self.send_error("bad_frame", "send JSON text frames").await;
            }
            Some(Ok(Message::Close(frame))) => {
                let clean = frame.is_some_and(|f| f.code == close_code::NORMAL);
                return Err(End::Client(if clean {
                    Departure::Closed
                } else {
                    self.dropped()
                }));
            }
            Some(Err(_)) | None => return Err(End::Client(self.dropped())),
        };
        let frame: ClientFrame = match serde_json::from_str(text.as_str()) {
            Ok(frame) => frame,
            Err(error) => {
                let message = format!(
                    "unknown frame ({error}); expected {{\"type\":\"ping\"}}, {{\"type\":\"pause\",\"reason\":\"…\"}} or {{\"type\":\"resume\"}}"
                );
                return self.send_error("bad_frame", &message).await;
            }
        };
        let done = match frame {
            ClientFrame::Ping => return self.send(ServerFrame::Pong.message()).await,
            ClientFrame::Pause { reason } => session.pause(reason.as_deref()).await,
            ClientFrame::Resume => session.resume().await,
        };
        match done {
            Ok(()) => Ok(()),
            Err(error) => {
                let error = ApiError::from(error);
                self.send_error(error.code, &error.message).await
            }
        }
    }

    fn dropped(&self) -> Departure {
        Departure::Dropped {
            grace: self.heartbeat.reconnect_grace(),
        }
    }

    /// Adds to `out` what the viewer may see of `event`, if anything.
    async fn render(&mut self, event: &Arc<Event>, out: &mut Vec<Message>) -> Result<(), End> {
        if matches!(
            event.audience,
            atende_engine::events::Audience::Ticket { .. }
        ) || event.kind == EventKind::SettingsChanged
        {
            self.refresh_if_settings_changed().await?;
        }
        let text = match live_filter::deliver(&self.viewer, event) {
            None => return Ok(()),
            Some(Frame::Event(event)) => self.frames.text(&event),
            Some(other) => Utf8Bytes::from(other.to_json()),
        };
        out.push(Message::Text(text));
        Ok(())
    }

    /// Heartbeat and periodic refresh of the viewer.
    async fn check(&mut self) -> Result<(), End> {
        if self.last_heard.elapsed() > self.heartbeat.timeout() {
            tracing::info!(user = %self.principal.user_id(), "live socket silent for three heartbeats; closing it");
            return Err(End::Server {
                code: CLOSE_HEARTBEAT_MISSED,
                reason: "no heartbeat: send {\"type\":\"ping\"} regularly",
            });
        }
        if self.viewer_built.elapsed() >= VIEW_REFRESH {
            self.refresh().await?;
        }
        Ok(())
    }

    async fn refresh_if_settings_changed(&mut self) -> Result<(), End> {
        match self.engine.settings(self.tenant).await {
            Ok(settings) if self.viewer.built_from(&settings) => Ok(()),
            Ok(_) => self.refresh().await,
            Err(error) => {
                tracing::warn!(%error, "cannot read settings for the live view; keeping the last one");
                Ok(())
            }
        }
    }

    async fn refresh(&mut self) -> Result<(), End> {
        self.viewer_built = Instant::now();
        match self.engine.live_viewer(&self.principal).await {
            Ok(viewer) => {
                self.viewer = viewer;
                Ok(())
            }
            Err(EngineError::Unauthenticated | EngineError::Forbidden(_)) => Err(End::Server {
                code: CLOSE_SESSION_ENDED,
                reason: "the session ended; log in again",
            }),
            Err(error) => {
                // A passing store error must not drop every socket: keep the last view.
                tracing::warn!(%error, "cannot refresh the live view; keeping the last one");
                Ok(())
            }
        }
    }

    async fn send_error(&mut self, code: &str, message: &str) -> Result<(), End> {
        self.send(ServerFrame::Error { code, message }.message())
            .await
    }

    /// Sends one frame now.
    async fn send(&mut self, message: Message) -> Result<(), End> {
        self.write(vec![message]).await
    }

    /// Writes `frames` with one flush. A client that does not take them within the heartbeat
    /// timeout is gone.
    async fn write(&mut self, frames: Vec<Message>) -> Result<(), End> {
        if frames.is_empty() {
            return Ok(());
        }
        let socket = &mut self.socket;
        let written = async move {
            for frame in frames {
                socket.feed(frame).await?;
            }
            socket.flush().await
        };
        match tokio::time::timeout(self.heartbeat.timeout(), written).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(End::Client(self.dropped())),
        }
    }

    async fn close(&mut self, code: u16, reason: &'static str) -> Result<(), axum::Error> {
        self.socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            })))
            .await
    }
}

/// Where a new connection starts: the first frame, the events to replay, and the live feed.
fn subscribe(
    bus: &EventBus,
    tenant: TenantId,
    since: Option<i64>,
) -> (
    ServerFrame<'static>,
    Vec<Arc<Event>>,
    broadcast::Receiver<Arc<Event>>,
) {
    let Some(since) = since else {
        let (last_id, between, receiver) = fresh_subscription(bus, tenant);
        return (ServerFrame::Hello { last_id }, between, receiver);
    };
    match bus.subscribe_since(tenant, since) {
        (Replay::Events(events), receiver) => {
            let last_id = events.last().map_or(since, |e| e.id);
            (ServerFrame::Hello { last_id }, events, receiver)
        }
        (Replay::Resync, _) => {
            let (last_id, between, receiver) = fresh_subscription(bus, tenant);
            (ServerFrame::Resync { last_id }, between, receiver)
        }
    }
}

/// A live feed from now, with the id it starts after. Events published between reading the id
/// and subscribing come back as a (normally empty) replay, so none is lost or repeated.
fn fresh_subscription(
    bus: &EventBus,
    tenant: TenantId,
) -> (i64, Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
    let last_id = bus.last_id(tenant);
    match bus.subscribe_since(tenant, last_id) {
        (Replay::Events(events), receiver) => (last_id, events, receiver),
        // Cannot happen (`last_id` was current a moment ago); follow live events then.
        (Replay::Resync, receiver) => (last_id, Vec::new(), receiver),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = value.parse() {
                map.insert(*name, value);
            }
        }
        map
    }

    #[test]
    fn handshakes_from_other_sites_are_cross_site() {
        assert!(!cross_site(&headers(&[("host", "atende.example")])));
        assert!(!cross_site(&headers(&[
            ("host", "atende.example"),
            ("origin", "https://atende.example")
        ])));
        assert!(cross_site(&headers(&[
            ("host", "atende.example"),
            ("origin", "https://evil.example")
        ])));
        assert!(cross_site(&headers(&[
            ("host", "atende.example"),
            ("origin", "null")
        ])));
        assert!(cross_site(&headers(&[
            ("host", "atende.example"),
            ("origin", "https://atende.example"),
            ("sec-fetch-site", "cross-site")
        ])));
    }
}
