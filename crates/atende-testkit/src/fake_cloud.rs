//! A fake WhatsApp Cloud API (`reference/channels.md` §2.8, §2.14) on 127.0.0.1:0, for tests and
//! benchmarks of the sending side: it checks the Bearer token and the body of
//! `POST /{version}/{phone_number_id}/messages`, records every message it accepts (recipient,
//! body, the `wamid` it answered, when), answers a fresh `wamid`, and pushes the `sent` status of
//! each accepted message to a webhook, signed with the app secret, retrying until it is taken
//! (Meta delivers at least once, §2.13).
//!
//! It also lists message templates, `GET /{version}/{waba_id}/message_templates`, from the ones
//! a test sets, in small pages (two templates a page unless told otherwise) joined by
//! `paging.cursors.after` and `paging.next` as Meta does, so a client must follow the cursor.
//!
//! Faults on demand: latency before the answer, scripted error answers, or accepting a message
//! and never answering (the lost answer a timeout or a crash leaves behind).
//!
//! A message counts as accepted the moment its request is read, before the latency, as at Meta:
//! a client that dies while waiting for the answer has still sent it.

use anyhow::{Context, bail};
use atende_engine::inbound::channels::cloud_api::SIGNATURE_HEADER;
use atende_engine::inbound::channels::signing::hmac_sha256;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, oneshot};

pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const ACCESS_TOKEN: &str = "fake-cloud-token";
pub const APP_SECRET: &str = "fake-cloud-app-secret";
pub const VERIFY_TOKEN: &str = "fake-cloud-verify";
/// The WhatsApp Business Account whose templates the fake lists.
pub const WABA_ID: &str = "102290129340398";
/// Templates per page of the list unless a test sets another size.
pub const DEFAULT_TEMPLATE_PAGE: usize = 2;

/// A template as Meta lists it, with a body of `body` (placeholders `{{1}}`…).
pub fn template(name: &str, language: &str, status: &str, category: &str, body: &str) -> Value {
    json!({
        "name": name,
        "language": language,
        "status": status,
        "category": category,
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Atende"},
            {"type": "BODY", "text": body},
            {"type": "FOOTER", "text": "Responda SAIR para não receber"}
        ],
    })
}

/// One message the fake accepted.
#[derive(Debug, Clone)]
pub struct RecordedSend {
    /// The id it answered (and reports statuses under).
    pub wamid: String,
    pub to: String,
    /// `text`, `template`, …
    pub kind: String,
    /// `text.body` of a text message.
    pub text: Option<String>,
    /// The whole request body.
    pub body: Value,
    /// Milliseconds since the Unix epoch when the request was read.
    pub at_ms: i64,
}

/// An answer to give instead of accepting the next message.
#[derive(Debug, Clone)]
pub enum Fault {
    /// A Graph error body with this HTTP status and `error.code` (nothing is accepted), with an
    /// optional `Retry-After` in seconds.
    Error {
        status: u16,
        code: i64,
        retry_after_secs: Option<u64>,
    },
    /// Accept the message (record it, report its status) but never answer.
    AcceptAndHang,
}

/// Where the fake pushes status webhooks.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub app_secret: String,
}

#[derive(Default)]
struct Shared {
    sends: Vec<RecordedSend>,
    faults: VecDeque<Fault>,
    latency: Duration,
    webhook: Option<Webhook>,
    /// Statuses waiting to be delivered, oldest first.
    outbox: VecDeque<Value>,
    delivered_statuses: usize,
    /// Requests answered with an error or refused.
    refused: usize,
    /// What the template list answers, in order.
    templates: Vec<Value>,
    template_page: usize,
    /// Template list requests answered with a page.
    template_pages_served: usize,
}

struct Inner {
    shared: Mutex<Shared>,
    counter: AtomicU64,
    wake_pusher: Notify,
    /// While `true`, requests wait before they are read (a provider that is slow to take them).
    held: tokio::sync::watch::Sender<bool>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panicking test thread must not hide what the fake recorded.
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running fake; stopped on drop.
pub struct FakeCloud {
    addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: Option<oneshot::Sender<()>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl FakeCloud {
    pub async fn start() -> anyhow::Result<FakeCloud> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            shared: Mutex::new(Shared {
                template_page: DEFAULT_TEMPLATE_PAGE,
                ..Shared::default()
            }),
            counter: AtomicU64::new(0),
            wake_pusher: Notify::new(),
            held: tokio::sync::watch::Sender::new(false),
        });
        let app = Router::new()
            .route("/{version}/{number}/messages", post(send))
            // The WABA id sits where sends have the number (one router segment, one name).
            .route("/{version}/{number}/message_templates", get(list_templates))
            .with_state(Arc::clone(&inner));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let (stop_pusher_tx, stop_pusher) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            let _ = served.await;
            let _ = stop_pusher_tx.send(true);
        });
        tokio::spawn(pusher(Arc::clone(&inner), stop_pusher));
        Ok(FakeCloud {
            addr,
            inner,
            shutdown: Some(shutdown),
        })
    }

    /// The Graph base URL to put in a connection's settings.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connection's `credentials` pointing at this fake; `status_wait_ms` as given.
    pub fn credentials(&self, status_wait_ms: u64) -> Value {
        json!({
            "access_token": ACCESS_TOKEN,
            "phone_number_id": PHONE_NUMBER_ID,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "waba_id": WABA_ID,
            "graph_base": self.base_url(),
            "api_version": "v23.0",
            "request_timeout_ms": 10_000,
            "status_wait_ms": status_wait_ms,
        })
    }

    /// The templates the list answers from now on (see [`template`]), replacing earlier ones.
    pub fn set_templates(&self, templates: impl IntoIterator<Item = Value>) {
        self.inner.lock().templates = templates.into_iter().collect();
    }

    /// Templates per page of the list (at least 1).
    pub fn set_template_page(&self, size: usize) {
        self.inner.lock().template_page = size.max(1);
    }

    /// Pages of the template list served so far.
    pub fn template_pages_served(&self) -> usize {
        self.inner.lock().template_pages_served
    }

    /// Holds requests before they are read (nothing is accepted meanwhile), or lets them go.
    pub fn hold(&self, held: bool) {
        self.inner.held.send_replace(held);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.inner.lock().latency = latency;
    }

    /// Answers the next requests with these faults, in order, then accepts again.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.inner.lock().faults.extend(faults);
    }

    /// Starts (or moves, or stops) pushing status webhooks; statuses of messages accepted while
    /// there was none are kept and go out once there is one.
    pub fn set_webhook(&self, webhook: Option<Webhook>) {
        self.inner.lock().webhook = webhook;
        self.inner.wake_pusher.notify_one();
    }

    /// Every accepted message, in the order the requests were read.
    pub fn sends(&self) -> Vec<RecordedSend> {
        self.inner.lock().sends.clone()
    }

    pub fn send_count(&self) -> usize {
        self.inner.lock().sends.len()
    }

    /// Requests refused (bad token or body) or answered with a scripted error.
    pub fn refused(&self) -> usize {
        self.inner.lock().refused
    }

    /// Statuses the webhook took, and statuses still waiting for it.
    pub fn statuses(&self) -> (usize, usize) {
        let shared = self.inner.lock();
        (shared.delivered_statuses, shared.outbox.len())
    }

    pub fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": message},
        "fbtrace_id": "AFakeTrace"}});
    (status, axum::Json(body)).into_response()
}

/// Checks the version of the path and the Bearer token as Meta would.
#[allow(clippy::result_large_err)] // a test fake: the rejection is the HTTP answer itself
fn check_access(version: &str, headers: &HeaderMap) -> Result<(), Response> {
    let version_ok = version
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        });
    if !version_ok {
        return Err(graph_error(StatusCode::BAD_REQUEST, 2500, "Unknown path"));
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(ACCESS_TOKEN) {
        return Err(graph_error(
            StatusCode::UNAUTHORIZED,
            190,
            "Invalid OAuth access token",
        ));
    }
    Ok(())
}

/// `GET /{version}/{waba_id}/message_templates?fields=&limit=&after=`: one page of the templates,
/// the smaller of `limit` and the fake's page size, with only the fields asked (and `id`).
/// The cursor is the offset of the page's end, opaque to the client.
async fn list_templates(
    State(inner): State<Arc<Inner>>,
    Path((version, waba)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = check_access(&version, &headers) {
        inner.lock().refused += 1;
        return refusal;
    }
    if waba != WABA_ID {
        inner.lock().refused += 1;
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "Unsupported get request: unknown WhatsApp Business Account id",
        );
    }
    let start = match query.get("after").map(|cursor| {
        cursor
            .strip_prefix("fake-after-")
            .and_then(|offset| offset.parse::<usize>().ok())
    }) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => {
            inner.lock().refused += 1;
            return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid cursor");
        }
    };
    let fields: Option<Vec<&str>> = query.get("fields").map(|f| f.split(',').collect());
    let mut shared = inner.lock();
    let size = query
        .get("limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .map_or(shared.template_page, |limit| {
            limit.clamp(1, shared.template_page)
        });
    let end = start.saturating_add(size).min(shared.templates.len());
    let data: Vec<Value> = shared
        .templates
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, template)| {
            let mut shown = serde_json::Map::new();
            shown.insert("id".into(), json!(format!("{}", 9_000_000 + start + index)));
            if let Some(object) = template.as_object() {
                for (key, value) in object {
                    if fields.as_ref().is_none_or(|f| f.contains(&key.as_str())) {
                        shown.insert(key.clone(), value.clone());
                    }
                }
            }
            Value::Object(shown)
        })
        .collect();
    let more = end < shared.templates.len();
    shared.template_pages_served += 1;
    drop(shared);
    let after = format!("fake-after-{end}");
    let mut paging = json!({"cursors": {"before": format!("fake-before-{start}"), "after": after}});
    if more {
        paging["next"] = json!(format!(
            "{}/{version}/{waba}/message_templates?limit={size}&after={after}",
            headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map_or_else(String::new, |host| format!("http://{host}"))
        ));
    }
    axum::Json(json!({"data": data, "paging": paging})).into_response()
}

/// Checks the request as Meta would: version, number, token, body shape (§2.8, §2.14).
#[allow(clippy::result_large_err)] // a test fake: the rejection is the HTTP answer itself
fn check(number: &str, version: &str, headers: &HeaderMap, body: &Value) -> Result<(), Response> {
    check_access(version, headers)?;
    if number != PHONE_NUMBER_ID {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "Unsupported post request: unknown phone number id",
        ));
    }
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("text");
    let shape_ok = body.get("messaging_product").and_then(Value::as_str) == Some("whatsapp")
        && body
            .get("to")
            .and_then(Value::as_str)
            .is_some_and(|to| !to.is_empty() && to.bytes().all(|b| b.is_ascii_digit()))
        && body.get(kind).is_some_and(Value::is_object)
        && (kind != "text"
            || body
                .pointer("/text/body")
                .and_then(Value::as_str)
                .is_some_and(|text| !text.is_empty()));
    if !shape_ok {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid parameter",
        ));
    }
    Ok(())
}

async fn send(
    State(inner): State<Arc<Inner>>,
    Path((version, number)): Path<(String, String)>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let mut held = inner.held.subscribe();
    // The sender dropped nothing: a closed channel cannot happen while the fake runs.
    let _ = held.wait_for(|held| !*held).await;
    let body: Value = match serde_json::from_slice(&raw) {
        Ok(body) => body,
        Err(_) => {
            inner.lock().refused += 1;
            return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid JSON");
        }
    };
    if let Err(refusal) = check(&number, &version, &headers, &body) {
        inner.lock().refused += 1;
        return refusal;
    }
    let n = inner.counter.fetch_add(1, Ordering::Relaxed);
    let to = body
        .get("to")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let (fault, latency, wamid) = {
        let mut shared = inner.lock();
        let fault = shared.faults.pop_front();
        if let Some(Fault::Error {
            status,
            code,
            retry_after_secs,
        }) = fault
        {
            shared.refused += 1;
            drop(shared);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut response = graph_error(status, code, "scripted failure");
            if let Some(secs) = retry_after_secs
                && let Ok(value) = secs.to_string().parse()
            {
                response.headers_mut().insert("retry-after", value);
            }
            return response;
        }
        let wamid = format!("wamid.FAKE{n:08}{}", u32::from_le_bytes(rand_bytes()));
        shared.sends.push(RecordedSend {
            wamid: wamid.clone(),
            to: to.clone(),
            kind: body
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("text")
                .to_owned(),
            text: body
                .pointer("/text/body")
                .and_then(Value::as_str)
                .map(str::to_owned),
            body: body.clone(),
            at_ms: now_ms(),
        });
        shared.outbox.push_back(json!({
            "id": wamid, "status": "sent",
            "timestamp": (now_ms() / 1000).to_string(),
            "recipient_id": to,
            "conversation": {"id": "CONVERSATION", "origin": {"type": "service"}},
            "pricing": {"billable": true, "pricing_model": "CBP", "category": "service"},
        }));
        (fault, shared.latency, wamid)
    };
    inner.wake_pusher.notify_one();
    if matches!(fault, Some(Fault::AcceptAndHang)) {
        // Long enough for any client timeout; the connection closes when the fake stops.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": wamid}],
        "fake_extra_field": true,
    }))
    .into_response()
}

fn rand_bytes() -> [u8; 4] {
    // Enough to make ids of two fakes differ; uniqueness comes from the counter.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos.to_le_bytes()
}

/// Statuses out per webhook call (Meta batches several in one POST).
const STATUS_BATCH: usize = 50;
/// Pause before delivering again after the webhook refused or could not be reached.
const PUSH_RETRY: Duration = Duration::from_millis(100);

/// Delivers queued statuses to the webhook, in order, a batch per POST, retrying a batch until
/// the webhook answers 200.
async fn pusher(inner: Arc<Inner>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Ok(http) = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return;
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let (webhook, batch) = {
            let shared = inner.lock();
            let batch: Vec<Value> = shared.outbox.iter().take(STATUS_BATCH).cloned().collect();
            (shared.webhook.clone(), batch)
        };
        let Some(webhook) = webhook.filter(|_| !batch.is_empty()) else {
            tokio::select! {
                _ = inner.wake_pusher.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => return,
            }
            continue;
        };
        let delivered = push(&http, &webhook, &batch).await;
        if delivered.is_ok() {
            let mut shared = inner.lock();
            let taken = batch.len().min(shared.outbox.len());
            shared.outbox.drain(..taken);
            shared.delivered_statuses += taken;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(PUSH_RETRY) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

async fn push(http: &reqwest::Client, webhook: &Webhook, statuses: &[Value]) -> anyhow::Result<()> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "FAKE_WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": statuses,
        }}]}],
    })
    .to_string();
    let signature = format!(
        "sha256={}",
        hex_lower(&hmac_sha256(webhook.app_secret.as_bytes(), body.as_bytes()))
    );
    let response = http
        .post(&webhook.url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .context("webhook unreachable")?;
    if !response.status().is_success() {
        bail!("webhook answered {}", response.status());
    }
    Ok(())
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
