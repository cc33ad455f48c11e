//! The attendance screen (SPEC §12): the ticket tabs, the chat view and their live updates.
//!
//! The page is rendered with the first page of the current tab and the unread counters already
//! in the HTML (the same engine views as `GET /api/v1/tickets` and `/counts`, so the same
//! visibility rule), plus the settings the script needs (`#attendance-config`). From then on
//! `attendance.js` works against the JSON API and the live socket.
//!
//! Besides the page, two small routes the chat view needs and the API does not offer (message
//! files come from the API: `GET /api/v1/tickets/{id}/messages/{message_id}/file`):
//! - `GET /attendance/tickets/{ticket}/signature`: whether the agent signature is on for it;
//! - `GET /attendance/sounds/new-message.wav`: the notification sound, synthesised here (no
//!   downloaded or vendored audio).

use super::{Page, PanelError, Section, Viewer};
use crate::error::ApiResult;
use crate::extract::{Auth, Path};
use crate::panel::i18n::{self, script_safe_json};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use atende_domain::settings::{Locale, Settings};
use atende_domain::{
    Connection, ConnectionStatus, Profile, Queue, QueueId, TicketId, TicketStatus,
};
use atende_engine::EngineError;
use atende_engine::auth::Principal;
use atende_engine::inbound::channels::webchat::MAX_UPLOAD_BYTES;
use atende_engine::ticket_views::{Tab, TicketCounts, TicketListItem, TicketQuery};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Where the notification sound is served.
pub const SOUND_PATH: &str = "/attendance/sounds/new-message.wav";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(show))
        .route("/attendance/tickets/{ticket}/signature", get(signature))
        .route(SOUND_PATH, get(sound))
}

/// Longest search the list accepts (`ticket_views`); a longer one in the address is cut.
const MAX_SEARCH_CHARS: usize = 200;

/// What the address asks to show: `/?tab=pending&queue_id=3&search=ana` (the script keeps it
/// current, so a reload shows the same list). Anything malformed falls back to the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub tab: Tab,
    /// In the Groups tab: its closed tickets instead of the active ones.
    pub closed_groups: bool,
    pub queue_id: Option<QueueId>,
    pub search: String,
}

#[derive(Deserialize, Default)]
struct RawView {
    tab: Option<String>,
    status: Option<String>,
    queue_id: Option<String>,
    search: Option<String>,
}

impl View {
    pub fn parse(query: Option<&str>, settings: &Settings, queues: &[Queue]) -> View {
        let raw: RawView = query
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        let tab = raw
            .tab
            .as_deref()
            .and_then(Tab::parse)
            .filter(|tab| *tab != Tab::Chatbot || settings.chatbot_tab)
            .unwrap_or(Tab::Open);
        let closed_groups = tab == Tab::Groups && raw.status.as_deref() == Some("closed");
        let queue_id = raw
            .queue_id
            .and_then(|q| q.trim().parse::<i64>().ok())
            .map(QueueId)
            .filter(|id| queues.iter().any(|q| q.id == *id));
        let search: String = raw
            .search
            .unwrap_or_default()
            .trim()
            .chars()
            .take(MAX_SEARCH_CHARS)
            .collect();
        View {
            tab,
            closed_groups,
            queue_id,
            search,
        }
    }

    fn query(&self) -> TicketQuery {
        TicketQuery {
            tab: Some(self.tab),
            status: self.closed_groups.then_some(TicketStatus::Closed),
            queue_id: self.queue_id,
            search: (!self.search.is_empty()).then(|| self.search.clone()),
            ..TicketQuery::default()
        }
    }

    fn is_groups(&self) -> bool {
        self.tab == Tab::Groups
    }
}

/// A link of the tab bars.
pub struct TabLink {
    /// `data-view` of the link: `open`, `pending`, `chatbot`, `closed`, `groups`,
    /// `groups-closed`, or `private` / `groups` for the top bar.
    pub view: &'static str,
    pub href: &'static str,
    pub label: &'static str,
    /// Which counter it shows (`data-count`), if any.
    pub counter: Option<&'static str>,
    pub count: String,
    pub current: bool,
}

/// A ticket row as the list shows it; `attendance.js` renders the same markup for rows that
/// arrive later and reads these attributes back.
pub struct Row {
    pub id: i64,
    pub status: &'static str,
    pub group: bool,
    pub bot: bool,
    pub queue_id: String,
    pub owner_id: String,
    pub contact_id: i64,
    pub connection_id: i64,
    pub unread: i64,
    pub sort: i64,
    pub time_ms: i64,
    pub name: String,
    pub initial: String,
    pub preview: String,
    pub queue_name: String,
    pub queue_color: String,
}

/// A connection's status chip.
pub struct Chip {
    pub id: i64,
    pub name: String,
    pub status: &'static str,
    pub label: &'static str,
}

/// An entry of the queue filter.
pub struct QueueOption {
    pub id: i64,
    pub name: String,
    pub selected: bool,
}

/// The settings and facts the script needs, as `#attendance-config`.
#[derive(Serialize)]
struct Config<'a> {
    me: Me<'a>,
    tab: &'static str,
    closed_groups: bool,
    queue_id: Option<QueueId>,
    search: &'a str,
    next_cursor: Option<String>,
    counts: &'a TicketCounts,
    queues: Vec<QueueRef<'a>>,
    sound_url: &'static str,
    max_upload_bytes: usize,
    settings: Flags,
}

#[derive(Serialize)]
struct Me<'a> {
    id: i64,
    name: &'a str,
    profile: Profile,
}

#[derive(Serialize)]
struct QueueRef<'a> {
    id: QueueId,
    name: &'a str,
    color: &'a str,
}

/// The settings that change what the screen shows or offers.
#[derive(Serialize)]
struct Flags {
    chatbot_tab: bool,
    tab_counters: bool,
    sound_notifications: bool,
    pin_connections_top: bool,
    show_message_history: bool,
    order_by_last_message: bool,
    tickets_page_size: i64,
    chat_messages_page_size: i64,
    audio_waveform: bool,
    audio_recorder_plugin: bool,
    enforce_signature: bool,
    require_demand_on_close: bool,
    allow_pause: bool,
    spy: bool,
    force_close: bool,
}

impl From<&Settings> for Flags {
    fn from(s: &Settings) -> Self {
        Flags {
            chatbot_tab: s.chatbot_tab,
            tab_counters: s.tab_counters,
            sound_notifications: s.sound_notifications,
            pin_connections_top: s.pin_connections_top,
            show_message_history: s.show_message_history,
            order_by_last_message: s.order_by_last_message,
            tickets_page_size: s.tickets_page_size,
            chat_messages_page_size: s.chat_messages_page_size,
            audio_waveform: s.audio_waveform,
            audio_recorder_plugin: s.audio_recorder_plugin,
            enforce_signature: s.enforce_signature,
            require_demand_on_close: s.require_demand_on_close,
            allow_pause: s.allow_pause,
            spy: s.feature_controls.spy,
            force_close: s.feature_controls.force_close,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "attendance.html")]
pub struct AttendancePage {
    pub page: Page,
    pub top_tabs: Vec<TabLink>,
    pub status_tabs: Vec<TabLink>,
    pub rows: Vec<Row>,
    pub queues: Vec<QueueOption>,
    pub chips: Vec<Chip>,
    pub pin_connections_top: bool,
    pub allow_pause: bool,
    pub show_signature: bool,
    pub recorder: bool,
    pub view_tab: &'static str,
    pub view_status: &'static str,
    pub search: String,
    pub config_json: String,
}

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    RawQuery(query): RawQuery,
) -> Result<AttendancePage, PanelError> {
    let locale = viewer.locale;
    let fail = |error: EngineError| PanelError::from_engine(locale, error);
    let page = Page::for_section(&viewer, Section::Attendance)?
        .module("attendance.js")
        .strings(&["attendance."]);
    let principal = &viewer.principal;
    let tenant = principal.tenant().map_err(fail)?;
    let engine = &state.engine;
    let settings = engine.settings(tenant).await.map_err(fail)?;
    let db = engine.db();
    let (queues, connections) = tokio::try_join!(
        atende_engine::db::queues::list(db, tenant),
        atende_engine::db::connections::list(db, tenant),
    )
    .map_err(|error| fail(error.into()))?;
    let view = View::parse(query.as_deref(), &settings, &queues);
    let ticket_query = view.query();
    // The page and the counters are the two queries of the screen; they run side by side.
    let (listed, counts) = tokio::join!(
        engine.list_tickets(principal, &ticket_query),
        engine.ticket_counts(principal),
    );
    let listed = listed.map_err(fail)?;
    let counts = counts.map_err(fail)?;

    let rows = listed
        .tickets
        .iter()
        .map(|item| row(item, &settings, &queues))
        .collect();
    let config = Config {
        me: Me {
            id: principal.user_id().0,
            name: &principal.user.name,
            profile: principal.profile().map_err(fail)?,
        },
        tab: view.tab.as_str(),
        closed_groups: view.closed_groups,
        queue_id: view.queue_id,
        search: &view.search,
        next_cursor: listed.next_cursor.clone(),
        counts: &counts,
        queues: queues
            .iter()
            .map(|q| QueueRef {
                id: q.id,
                name: &q.name,
                color: &q.color,
            })
            .collect(),
        sound_url: SOUND_PATH,
        max_upload_bytes: MAX_UPLOAD_BYTES,
        settings: Flags::from(&*settings),
    };
    let config_json = script_safe_json(&serde_json::to_string(&config).unwrap_or_default());
    Ok(AttendancePage {
        top_tabs: top_tabs(locale, &view, &counts),
        status_tabs: status_tabs(locale, &view, &counts, settings.chatbot_tab),
        rows,
        queues: queue_options(principal, &queues, view.queue_id),
        chips: connections.iter().map(|c| chip(locale, c)).collect(),
        pin_connections_top: settings.pin_connections_top,
        allow_pause: settings.allow_pause,
        show_signature: !settings.enforce_signature,
        recorder: settings.audio_recorder_plugin,
        view_tab: view.tab.as_str(),
        view_status: if view.closed_groups { "closed" } else { "" },
        search: view.search,
        config_json,
        page,
    })
}

/// What a counter shows: nothing for none (or counters off), "1000+" at the cap.
pub fn counter_text(value: Option<i64>, cap: i64) -> String {
    match value {
        Some(n) if n >= cap => format!("{cap}+"),
        Some(n) if n > 0 => n.to_string(),
        _ => String::new(),
    }
}

fn top_tabs(locale: Locale, view: &View, counts: &TicketCounts) -> Vec<TabLink> {
    vec![
        TabLink {
            view: "private",
            href: "/?tab=open",
            label: i18n::t(locale, "attendance.top.private"),
            counter: Some("private"),
            count: counter_text(counts.private, counts.cap),
            current: !view.is_groups(),
        },
        TabLink {
            view: "groups",
            href: "/?tab=groups",
            label: i18n::t(locale, "attendance.top.groups"),
            counter: Some("groups"),
            count: counter_text(counts.groups, counts.cap),
            current: view.is_groups(),
        },
    ]
}

fn status_tabs(
    locale: Locale,
    view: &View,
    counts: &TicketCounts,
    chatbot_tab: bool,
) -> Vec<TabLink> {
    let link = |v: &'static str,
                href: &'static str,
                key: &'static str,
                counter: Option<(&'static str, Option<i64>)>,
                current: bool| TabLink {
        view: v,
        href,
        label: i18n::t(locale, key),
        counter: counter.map(|(name, _)| name),
        count: counter
            .map(|(_, value)| counter_text(value, counts.cap))
            .unwrap_or_default(),
        current,
    };
    if view.is_groups() {
        return vec![
            link(
                "groups",
                "/?tab=groups",
                "attendance.tab.active",
                None,
                !view.closed_groups,
            ),
            link(
                "groups-closed",
                "/?tab=groups&status=closed",
                "attendance.tab.closed",
                None,
                view.closed_groups,
            ),
        ];
    }
    let mut tabs = vec![
        link(
            "open",
            "/?tab=open",
            "attendance.tab.open",
            Some(("open", counts.open)),
            view.tab == Tab::Open,
        ),
        link(
            "pending",
            "/?tab=pending",
            "attendance.tab.pending",
            Some(("pending", counts.pending)),
            view.tab == Tab::Pending,
        ),
    ];
    if chatbot_tab {
        tabs.push(link(
            "chatbot",
            "/?tab=chatbot",
            "attendance.tab.chatbot",
            Some(("chatbot", counts.chatbot)),
            view.tab == Tab::Chatbot,
        ));
    }
    tabs.push(link(
        "closed",
        "/?tab=closed",
        "attendance.tab.closed",
        None,
        view.tab == Tab::Closed,
    ));
    tabs
}

/// The list's sort key of a ticket under `order_by_last_message` (as `ticket_list` orders).
pub fn sort_key(item: &TicketListItem, settings: &Settings) -> i64 {
    let ticket = &item.ticket;
    if settings.order_by_last_message {
        ticket.last_inbound_at.unwrap_or(ticket.created_at).0
    } else {
        ticket.updated_at.0
    }
}

fn row(item: &TicketListItem, settings: &Settings, queues: &[Queue]) -> Row {
    let ticket = &item.ticket;
    let queue = ticket
        .queue_id
        .and_then(|id| queues.iter().find(|q| q.id == id));
    let name = if item.contact.name.trim().is_empty() {
        item.contact.phone.clone().unwrap_or_default()
    } else {
        item.contact.name.clone()
    };
    Row {
        id: ticket.id.0,
        status: ticket.status.as_str(),
        group: ticket.is_group,
        bot: item.bot_active,
        queue_id: ticket.queue_id.map(|q| q.0.to_string()).unwrap_or_default(),
        owner_id: ticket.owner_id.map(|u| u.0.to_string()).unwrap_or_default(),
        contact_id: item.contact.id.0,
        connection_id: ticket.connection_id.0,
        unread: ticket.unread,
        sort: sort_key(item, settings),
        time_ms: ticket.last_message_at.unwrap_or(ticket.updated_at).0,
        initial: name
            .chars()
            .next()
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default(),
        name,
        preview: ticket.last_message.chars().take(120).collect(),
        queue_name: queue.map(|q| q.name.clone()).unwrap_or_default(),
        queue_color: queue.map(|q| safe_color(&q.color)).unwrap_or_default(),
    }
}

/// A queue colour fit for the tag's `--queue` (set by `attendance.js`): `#rgb` / `#rrggbb`,
/// else none.
pub fn safe_color(color: &str) -> String {
    let hex = color.strip_prefix('#').unwrap_or("");
    if matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        color.to_owned()
    } else {
        String::new()
    }
}

/// The queue filter: a `user` picks among their own queues (when they have some), managers
/// among all.
fn queue_options(
    principal: &Principal,
    queues: &[Queue],
    selected: Option<QueueId>,
) -> Vec<QueueOption> {
    let own = &principal.user.queue_ids;
    let only_own = principal.user.profile == Some(Profile::User) && !own.is_empty();
    queues
        .iter()
        .filter(|q| !only_own || own.contains(&q.id) || selected == Some(q.id))
        .map(|q| QueueOption {
            id: q.id.0,
            name: q.name.clone(),
            selected: selected == Some(q.id),
        })
        .collect()
}

fn chip(locale: Locale, connection: &Connection) -> Chip {
    let (status, key) = match connection.status {
        ConnectionStatus::Connected => ("connected", "attendance.connection.connected"),
        ConnectionStatus::Connecting => ("connecting", "attendance.connection.connecting"),
        ConnectionStatus::Disconnected => ("disconnected", "attendance.connection.disconnected"),
        ConnectionStatus::Error => ("error", "attendance.connection.error"),
    };
    Chip {
        id: connection.id.0,
        name: connection.name.clone(),
        status,
        label: i18n::t(locale, key),
    }
}

// ---- the chat view's own routes ----

/// Whether the agent signature goes on this ticket's replies, and whether agents may change it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignatureState {
    pub enabled: bool,
    pub enforced: bool,
}

async fn signature(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(ticket_id): Path<i64>,
) -> ApiResult<axum::Json<SignatureState>> {
    let engine = &state.engine;
    let tenant = principal.tenant()?;
    let ticket = engine
        .visible_ticket(&principal, TicketId(ticket_id))
        .await?;
    let enforced = engine.settings(tenant).await?.enforce_signature;
    let disabled = atende_engine::db::outbox::signature_disabled(engine.db(), tenant, ticket.id)
        .await
        .map_err(EngineError::from)?;
    Ok(axum::Json(SignatureState {
        enabled: enforced || !disabled,
        enforced,
    }))
}

async fn sound() -> Response {
    let mut response = notification_wav().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

/// Sample rate of the notification sound.
const SOUND_RATE: u32 = 16_000;

/// A short two-note chime (E6 then A6, each fading out), 16-bit mono PCM in a WAV container,
/// synthesised once.
pub fn notification_wav() -> &'static [u8] {
    static WAV: OnceLock<Vec<u8>> = OnceLock::new();
    WAV.get_or_init(|| {
        let notes = [(1318.5_f64, 0.0_f64, 0.16_f64), (1760.0, 0.11, 0.22)];
        let total = 0.34_f64;
        let count = (f64::from(SOUND_RATE) * total) as usize;
        let mut samples = Vec::with_capacity(count);
        for n in 0..count {
            let time = n as f64 / f64::from(SOUND_RATE);
            let mut value = 0.0;
            for (frequency, start, length) in notes {
                let local = time - start;
                if (0.0..length).contains(&local) {
                    // A 5 ms attack avoids a click; the exponential tail sounds like a bell.
                    let attack = (local / 0.005).min(1.0);
                    let decay = (-local * 14.0).exp();
                    value += (std::f64::consts::TAU * frequency * local).sin() * attack * decay;
                }
            }
            let scaled = (value * 0.45).clamp(-1.0, 1.0) * f64::from(i16::MAX);
            samples.push(scaled as i16);
        }
        wav(&samples, SOUND_RATE)
    })
}

/// 16-bit mono PCM samples in a RIFF/WAVE container.
fn wav(samples: &[i16], rate: u32) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(id: i64) -> Queue {
        Queue {
            id: QueueId(id),
            tenant_id: atende_domain::TenantId(1),
            name: format!("Q{id}"),
            color: "#00aa00".into(),
            greeting: String::new(),
            absence_message: String::new(),
            business_hours: None,
            created_at: atende_domain::Timestamp(0),
            updated_at: atende_domain::Timestamp(0),
        }
    }

    #[test]
    fn the_address_picks_the_tab_and_bad_values_fall_back_to_open() {
        let settings = Settings::default();
        let queues = [queue(3)];
        let view = View::parse(
            Some("tab=pending&queue_id=3&search=%20ana%20"),
            &settings,
            &queues,
        );
        assert_eq!(view.tab, Tab::Pending);
        assert_eq!(view.queue_id, Some(QueueId(3)));
        assert_eq!(view.search, "ana");
        let unknown = View::parse(Some("tab=nope&queue_id=9"), &settings, &queues);
        assert_eq!((unknown.tab, unknown.queue_id), (Tab::Open, None));
        assert_eq!(View::parse(None, &settings, &queues).tab, Tab::Open);
        let long = "x".repeat(500);
        let cut = View::parse(Some(&format!("search={long}")), &settings, &queues);
        assert_eq!(cut.search.chars().count(), MAX_SEARCH_CHARS);
    }

    #[test]
    fn the_chatbot_tab_exists_only_with_chatbot_tab() {
        let off = Settings {
            chatbot_tab: false,
            ..Settings::default()
        };
        assert_eq!(View::parse(Some("tab=chatbot"), &off, &[]).tab, Tab::Open);
        let on = Settings {
            chatbot_tab: true,
            ..Settings::default()
        };
        assert_eq!(View::parse(Some("tab=chatbot"), &on, &[]).tab, Tab::Chatbot);
        let counts = TicketCounts {
            enabled: true,
            open: Some(1),
            pending: Some(2),
            chatbot: Some(3),
            groups: Some(0),
            private: Some(6),
            cap: 1000,
        };
        let view = View::parse(None, &on, &[]);
        let shown: Vec<&str> = status_tabs(Locale::En, &view, &counts, true)
            .iter()
            .map(|t| t.view)
            .collect();
        assert_eq!(shown, ["open", "pending", "chatbot", "closed"]);
        let shown: Vec<&str> = status_tabs(Locale::En, &view, &counts, false)
            .iter()
            .map(|t| t.view)
            .collect();
        assert_eq!(shown, ["open", "pending", "closed"]);
    }

    #[test]
    fn groups_tab_lists_active_or_closed_group_tickets() {
        let settings = Settings::default();
        let active = View::parse(Some("tab=groups"), &settings, &[]);
        assert_eq!(active.query().status, None);
        let closed = View::parse(Some("tab=groups&status=closed"), &settings, &[]);
        assert_eq!(closed.query().status, Some(TicketStatus::Closed));
        // `status` narrows only the Groups tab here.
        let open = View::parse(Some("tab=open&status=closed"), &settings, &[]);
        assert_eq!(open.query().status, None);
    }

    #[test]
    fn counters_hide_zero_and_stop_at_the_cap() {
        assert_eq!(counter_text(None, 1000), "");
        assert_eq!(counter_text(Some(0), 1000), "");
        assert_eq!(counter_text(Some(7), 1000), "7");
        assert_eq!(counter_text(Some(1000), 1000), "1000+");
    }

    #[test]
    fn only_hex_queue_colours_reach_the_page() {
        assert_eq!(safe_color("#0a0"), "#0a0");
        assert_eq!(safe_color("#00AA00"), "#00AA00");
        assert_eq!(safe_color("red;background:url(x)"), "");
        assert_eq!(safe_color("#12345"), "");
    }

    /// The scripts name keys as plain strings too (refusal wordings) and build some from wire
    /// values (`attendance.status.<status>`): every one of them exists in both languages.
    #[test]
    fn every_attendance_key_the_scripts_can_ask_for_exists() {
        let catalog = i18n::load().unwrap_or_else(|error| panic!("{error}"));
        let mut wanted: Vec<String> = Vec::new();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/panel/assets");
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("attendance") && name.ends_with(".js")) {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for quoted in text.split('"').skip(1).step_by(2) {
                if quoted.starts_with("attendance.")
                    && quoted
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
                {
                    wanted.push(quoted.to_owned());
                }
            }
        }
        assert!(
            wanted.len() > 40,
            "keys found in the scripts: {}",
            wanted.len()
        );
        for status in TicketStatus::ALL {
            wanted.push(format!("attendance.status.{status}"));
        }
        for status in atende_domain::MessageStatus::ALL {
            wanted.push(format!("attendance.delivery.{status}"));
        }
        for action in [
            "accept", "return", "transfer", "pause", "resume", "close", "reopen",
        ] {
            wanted.push(format!("attendance.done.{action}"));
        }
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|k| !catalog.contains_key(*k))
            .collect();
        assert!(missing.is_empty(), "missing: {missing:?}");
    }

    #[test]
    fn the_notification_sound_is_a_short_valid_wav() {
        let wav = notification_wav();
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(&wav[8..16], b"WAVEfmt ");
        let rate = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
        assert_eq!(rate, SOUND_RATE);
        let data_len = u32::from_le_bytes([wav[40], wav[41], wav[42], wav[43]]) as usize;
        assert_eq!(wav.len(), 44 + data_len);
        let seconds = data_len as f64 / f64::from(SOUND_RATE * 2);
        assert!((0.2..0.5).contains(&seconds), "{seconds} s");
        assert!(wav.len() < 16 * 1024, "small: {} bytes", wav.len());
        // Not silence, and no clipping at full scale.
        let peak = wav[44..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]).unsigned_abs())
            .max()
            .unwrap_or(0);
        assert!(peak > 5_000 && peak < i16::MAX as u16, "peak {peak}");
    }
}
