//! What a viewer reads of tickets (SPEC §5, §12, §13): the tab lists, the unread tab counters, one
//! ticket, its chat, and "mark read". Also the viewer's visibility plan and the one visible-ticket
//! check that the commands and the live push reuse, so every way of reaching a ticket applies the
//! same rule (`atende_domain::visibility`).
//!
//! Tabs: `open` = open and paused tickets (paused show under open); `pending` = pending tickets,
//! without the bot-held ones when `chatbot_tab` is on (they are in `chatbot`); `closed`; `groups` =
//! group tickets that are not closed (a `status` narrows it, `closed` included). Group tickets are
//! only in `groups`. No tab = every ticket the viewer may see. With `hide_old_tickets`, a closed
//! ticket leaves the lists once its list time (the sort key of `order_by_last_message`) is older
//! than `old_ticket_days`; that bound is a range on the lists' own index.

use crate::auth::Principal;
use crate::events::EventKind;
use crate::ticket_events::facts_of;
use crate::{Engine, EngineError, EngineResult};
use atende_db::outbox::ReplyContext;
use atende_db::ticket_list::{
    self, ChatScope, Filter, ListedTicket, PageRequest, Scope, SortKey, Visibility,
};
use atende_domain::settings::Settings;
use atende_domain::visibility::{
    Fact, MessageAccess, Plan, TicketFacts, Viewer, VisibilitySettings, message_access,
};
use atende_domain::{
    ContactId, Message, MessageId, QueueId, TagId, TenantId, Ticket, TicketId, TicketStatus,
    Timestamp, UserId, ValidationError,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as CURSOR;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// A counter past this reads "this many or more" (see `ticket_list::unread_counts`).
pub const COUNTER_CAP: i64 = 1000;

/// Longest accepted search text.
const MAX_SEARCH_CHARS: usize = 200;

/// The refusal a `user` gets for the chat of a pending ticket without the `spy` feature; the web
/// edge answers it with 403 `spy_disabled`.
pub const SPY_DISABLED: &str = "this ticket is waiting in the queue: accept it to read its messages (reading pending tickets needs the 'spy' feature)";

/// The list tabs of the attendance screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tab {
    Open,
    Pending,
    Closed,
    Groups,
    Chatbot,
}

impl Tab {
    pub fn as_str(self) -> &'static str {
        match self {
            Tab::Open => "open",
            Tab::Pending => "pending",
            Tab::Closed => "closed",
            Tab::Groups => "groups",
            Tab::Chatbot => "chatbot",
        }
    }

    pub fn parse(text: &str) -> Option<Tab> {
        [
            Tab::Open,
            Tab::Pending,
            Tab::Closed,
            Tab::Groups,
            Tab::Chatbot,
        ]
        .into_iter()
        .find(|tab| tab.as_str() == text)
    }
}

/// `GET /api/v1/tickets` parameters, parsed.
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    pub tab: Option<Tab>,
    /// Narrows the tab; alone, names a status tab (`paused` = the paused part of `open`).
    pub status: Option<TicketStatus>,
    pub queue_id: Option<QueueId>,
    pub owner_id: Option<UserId>,
    pub tag_id: Option<TagId>,
    /// `true`: only tickets with unread messages; `false`: only tickets without.
    pub unread: Option<bool>,
    pub search: Option<String>,
    pub cursor: Option<String>,
}

/// The contact fields a list row shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ContactSummary {
    pub id: ContactId,
    pub name: String,
    pub phone: Option<String>,
    pub avatar_url: Option<String>,
}

/// A ticket as a list row shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TicketListItem {
    #[serde(flatten)]
    pub ticket: Ticket,
    /// A chatbot session or an external integration holds the ticket.
    pub bot_active: bool,
    pub contact: ContactSummary,
    /// The contact's tags.
    pub tag_ids: Vec<TagId>,
}

impl From<ListedTicket> for TicketListItem {
    fn from(listed: ListedTicket) -> Self {
        TicketListItem {
            bot_active: listed.bot_active(),
            contact: ContactSummary {
                id: listed.contact.id,
                name: listed.contact.name,
                phone: listed.contact.phone,
                avatar_url: listed.contact.avatar_url,
            },
            tag_ids: listed.tag_ids,
            ticket: listed.ticket,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketPage {
    pub tickets: Vec<TicketListItem>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// The tab counters, when asked for with the page (`with_counts`): one round trip for a
    /// list's first page and its counters, read side by side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<TicketCounts>,
}

/// How many visible tickets have unread messages, per tab (SPEC `tab_counters`). Each value stops
/// at `cap` ("cap or more"). All `null` when `tab_counters` is off; `chatbot` is `null` when the
/// Chatbot tab is off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TicketCounts {
    pub enabled: bool,
    pub open: Option<i64>,
    pub pending: Option<i64>,
    pub chatbot: Option<i64>,
    pub groups: Option<i64>,
    /// The Private top tab: open + pending + chatbot.
    pub private: Option<i64>,
    pub cap: i64,
}

/// Which messages of the ticket the viewer may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageAccessView {
    /// Every message.
    All,
    /// The ticket's own messages, and history messages stamped with no queue or one of the
    /// viewer's queues.
    OwnQueues,
    /// None: a pending ticket of another agent's queue, without the `spy` feature.
    None,
}

impl From<MessageAccess> for MessageAccessView {
    fn from(access: MessageAccess) -> Self {
        match access {
            MessageAccess::All => MessageAccessView::All,
            MessageAccess::ViewerQueuesOnly => MessageAccessView::OwnQueues,
            MessageAccess::None => MessageAccessView::None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub item: TicketListItem,
    pub message_access: MessageAccessView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessagePage {
    /// Newest first.
    pub messages: Vec<Message>,
    /// Pass as `before` for older messages; `null` when there are none.
    pub next_cursor: Option<String>,
    /// `show_message_history`: the page spans every ticket of this contact on this connection.
    pub history: bool,
}

/// What the checks of one request share.
struct ViewContext {
    tenant: TenantId,
    settings: Arc<Settings>,
    plan: Plan,
}

/// A ticket the viewer may see, with its visibility facts.
struct Seen {
    ticket: Ticket,
    facts: TicketFacts,
}

fn viewer_of(principal: &Principal) -> EngineResult<Viewer> {
    Ok(Viewer {
        user_id: principal.user_id(),
        profile: principal.profile()?,
        queue_ids: principal.user.queue_ids.clone(),
    })
}

/// Whether the plan asks about the contact's wallet (only then are the owners looked up).
/// The facts, when the plan lets their ticket be seen.
fn admitted(plan: &Plan, facts: TicketFacts) -> Option<TicketFacts> {
    (plan.sees_all() || plan.admits(&facts)).then_some(facts)
}

fn reads_wallet(plan: &Plan) -> bool {
    plan.branches
        .iter()
        .flat_map(|b| &b.all)
        .any(|literal| matches!(literal.fact, Fact::WalletHasOwners | Fact::ViewerInWallet))
}

fn invalid(field: &str, message: impl Into<String>) -> EngineError {
    EngineError::Validation(ValidationError::field(field, message))
}

fn sort_key(settings: &Settings) -> SortKey {
    if settings.order_by_last_message {
        SortKey::LastInbound
    } else {
        SortKey::UpdatedAt
    }
}

/// The tickets a tab holds (module docs).
fn tab_scope(tab: Tab, settings: &Settings) -> Scope {
    use TicketStatus::*;
    match tab {
        Tab::Open => Scope {
            statuses: vec![Open, Paused],
            group: Some(false),
            bot: None,
        },
        Tab::Pending => Scope {
            statuses: vec![Pending],
            group: Some(false),
            bot: settings.chatbot_tab.then_some(false),
        },
        Tab::Chatbot => Scope {
            statuses: vec![Pending],
            group: Some(false),
            bot: Some(true),
        },
        Tab::Closed => Scope {
            statuses: vec![Closed],
            group: Some(false),
            bot: None,
        },
        Tab::Groups => Scope {
            statuses: vec![Open, Pending, Paused],
            group: Some(true),
            bot: None,
        },
    }
}

/// Resolves `tab` and `status` (a synonym of the status tabs, or a narrowing of a tab).
fn query_scope(
    tab: Option<Tab>,
    status: Option<TicketStatus>,
    settings: &Settings,
) -> EngineResult<Scope> {
    if tab == Some(Tab::Chatbot) && !settings.chatbot_tab {
        return Err(invalid(
            "tab",
            "the chatbot tab is off (setting chatbot_tab): bot tickets are listed under pending",
        ));
    }
    let Some(tab) = tab else {
        // `status` alone names a status tab; `paused` is the paused part of `open`.
        return Ok(match status {
            Some(TicketStatus::Open) => tab_scope(Tab::Open, settings),
            Some(TicketStatus::Pending) => tab_scope(Tab::Pending, settings),
            Some(TicketStatus::Closed) => tab_scope(Tab::Closed, settings),
            Some(TicketStatus::Paused) => Scope {
                statuses: vec![TicketStatus::Paused],
                ..tab_scope(Tab::Open, settings)
            },
            None => Scope {
                statuses: TicketStatus::ALL.to_vec(),
                group: None,
                bot: None,
            },
        });
    };
    let mut scope = tab_scope(tab, settings);
    if let Some(status) = status {
        // The Groups tab holds every status of group tickets on request, closed included.
        if tab != Tab::Groups && !scope.statuses.contains(&status) {
            return Err(invalid(
                "status",
                format!("status {status} is not part of the {} tab", tab.as_str()),
            ));
        }
        scope.statuses = vec![status];
    }
    Ok(scope)
}

fn sort_tag(sort: SortKey) -> &'static str {
    match sort {
        SortKey::LastInbound => "i",
        SortKey::UpdatedAt => "u",
    }
}

/// Opaque list cursor: the ordering it belongs to, the sort key and the id of the last row.
fn encode_list_cursor(sort: SortKey, key: i64, id: TicketId) -> String {
    CURSOR.encode(format!("t{}:{key}:{}", sort_tag(sort), id.0))
}

fn decode_list_cursor(cursor: &str, sort: SortKey) -> EngineResult<(i64, TicketId)> {
    let bad = || {
        invalid(
            "cursor",
            "not a cursor of this list: start again without one",
        )
    };
    let text = CURSOR
        .decode(cursor.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(bad)?;
    let rest = text.strip_prefix('t').ok_or_else(bad)?;
    let mut parts = rest.splitn(3, ':');
    let (Some(tag), Some(key), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if tag != sort_tag(sort) {
        return Err(invalid(
            "cursor",
            "the list order changed (setting order_by_last_message): start again without a cursor",
        ));
    }
    let key = key.parse().map_err(|_| bad())?;
    let id = id.parse().map_err(|_| bad())?;
    Ok((key, TicketId(id)))
}

fn encode_message_cursor(message: &Message) -> String {
    CURSOR.encode(format!("m:{}:{}", message.sent_at.0, message.id.0))
}

fn decode_message_cursor(cursor: &str) -> EngineResult<(Timestamp, MessageId)> {
    let bad = || {
        invalid(
            "before",
            "not a cursor of this chat: start again without one",
        )
    };
    let text = CURSOR
        .decode(cursor.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(bad)?;
    let rest = text.strip_prefix("m:").ok_or_else(bad)?;
    let (sent_at, id) = rest.split_once(':').ok_or_else(bad)?;
    Ok((
        Timestamp(sent_at.parse().map_err(|_| bad())?),
        MessageId(id.parse().map_err(|_| bad())?),
    ))
}

impl Engine {
    /// The viewer's visibility plan under the tenant's current settings: what the live push
    /// evaluates with `plan.admits(&facts)` for each event. Cheap: settings are cached and the
    /// tenant's queues are looked up only for a `user` (or supervisor seeing as one) who has no
    /// queue.
    pub async fn viewer_plan(&self, principal: &Principal) -> EngineResult<Plan> {
        let tenant = principal.tenant()?;
        let settings = self.settings(tenant).await?;
        self.plan_for(principal, tenant, &settings).await
    }

    async fn plan_for(
        &self,
        principal: &Principal,
        tenant: TenantId,
        settings: &Settings,
    ) -> EngineResult<Plan> {
        let viewer = viewer_of(principal)?;
        let rules = VisibilitySettings::from(settings);
        // The viewer's queues are queues of the tenant, so the tenant has some; the answer only
        // matters when the plan is not "everything".
        let plan = Plan::for_viewer(&viewer, &rules, true);
        if plan.sees_all() || !viewer.queue_ids.is_empty() {
            return Ok(plan);
        }
        let has_queues = atende_db::queues::count(self.db(), tenant).await? > 0;
        Ok(if has_queues {
            plan
        } else {
            Plan::for_viewer(&viewer, &rules, false)
        })
    }

    async fn view_context(&self, principal: &Principal) -> EngineResult<ViewContext> {
        let tenant = principal.tenant()?;
        let settings = self.settings(tenant).await?;
        let plan = self.plan_for(principal, tenant, &settings).await?;
        Ok(ViewContext {
            tenant,
            settings,
            plan,
        })
    }

    /// Whether the plan admits the ticket, with the ticket's facts.
    async fn facts_if_admitted(
        &self,
        tenant: TenantId,
        plan: &Plan,
        ticket: &Ticket,
    ) -> EngineResult<Option<TicketFacts>> {
        let wallet = if !plan.sees_all() && reads_wallet(plan) {
            atende_db::contacts::wallet_of(self.db(), tenant, ticket.contact_id).await?
        } else {
            Vec::new()
        };
        Ok(admitted(plan, facts_of(ticket, wallet)))
    }

    async fn seen(&self, context: &ViewContext, id: TicketId) -> EngineResult<Seen> {
        let ticket = atende_db::tickets::get(self.db(), context.tenant, id).await?;
        match self
            .facts_if_admitted(context.tenant, &context.plan, &ticket)
            .await?
        {
            Some(facts) => Ok(Seen { ticket, facts }),
            // Same answer as a ticket of another tenant: its existence is not revealed.
            None => Err(EngineError::NotFound),
        }
    }

    /// The ticket, if the caller may see it; `NotFound` otherwise (exactly as for a ticket of
    /// another tenant). Commands and the live push authorise through this.
    pub async fn visible_ticket(
        &self,
        principal: &Principal,
        id: TicketId,
    ) -> EngineResult<Ticket> {
        let context = self.view_context(principal).await?;
        Ok(self.seen(&context, id).await?.ticket)
    }

    /// What an agent's reply needs about a ticket (one read), if the caller may see the ticket;
    /// `NotFound` otherwise, as [`Engine::visible_ticket`].
    pub(crate) async fn visible_reply_context(
        &self,
        principal: &Principal,
        id: TicketId,
    ) -> EngineResult<ReplyContext> {
        let context = self.view_context(principal).await?;
        let chat = atende_db::outbox::reply_context(self.db(), context.tenant, id).await?;
        match admitted(&context.plan, facts_of(&chat.ticket, chat.wallet.clone())) {
            Some(_) => Ok(chat),
            None => Err(EngineError::NotFound),
        }
    }

    /// A page of a tab (module docs), newest first by `order_by_last_message`'s key.
    pub async fn list_tickets(
        &self,
        principal: &Principal,
        query: &TicketQuery,
    ) -> EngineResult<TicketPage> {
        let context = self.view_context(principal).await?;
        self.page_in(&context, query).await
    }

    /// A page with the tab counters, both read at the same time over one visibility plan (the
    /// store answers them on two connections, so the answer costs the slower of the two).
    pub async fn list_tickets_with_counts(
        &self,
        principal: &Principal,
        query: &TicketQuery,
    ) -> EngineResult<TicketPage> {
        let context = self.view_context(principal).await?;
        let (mut page, counts) =
            tokio::try_join!(self.page_in(&context, query), self.counts_in(&context))?;
        page.counts = Some(counts);
        Ok(page)
    }

    async fn page_in(
        &self,
        context: &ViewContext,
        query: &TicketQuery,
    ) -> EngineResult<TicketPage> {
        let settings = &context.settings;
        let scope = query_scope(query.tab, query.status, settings)?;
        let sort = sort_key(settings);
        let after = query
            .cursor
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .map(|c| decode_list_cursor(c, sort))
            .transpose()?;
        let search = match query
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(text) if text.chars().count() > MAX_SEARCH_CHARS => {
                return Err(invalid(
                    "search",
                    format!("must be at most {MAX_SEARCH_CHARS} characters"),
                ));
            }
            other => other.map(str::to_owned),
        };
        let filter = Filter {
            queue_id: query.queue_id,
            owner_id: query.owner_id,
            tag_id: query.tag_id,
            unread: query.unread,
            search,
            closed_since: settings.hide_old_tickets.then(|| {
                Timestamp::now()
                    .0
                    .saturating_sub(settings.old_ticket_days.saturating_mul(86_400_000))
            }),
        };
        ticket_list::check_filter_refs(self.db(), context.tenant, &filter).await?;
        let tenant_queues = if ticket_list::needs_tenant_queues(&context.plan, &scope, &filter) {
            ticket_list::tenant_queue_ids(self.db(), context.tenant).await?
        } else {
            Vec::new()
        };
        let size = settings.tickets_page_size.max(1);
        let request = PageRequest {
            scope: &scope,
            filter: &filter,
            sort,
            after,
            limit: size + 1,
        };
        let visibility = Visibility {
            plan: &context.plan,
            tenant_queue_ids: &tenant_queues,
        };
        let mut rows = ticket_list::page(self.db(), context.tenant, visibility, &request).await?;
        let more = rows.len() as i64 > size;
        rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next_cursor = if more {
            rows.last()
                .map(|row| encode_list_cursor(sort, row.sort_key, row.ticket.id))
        } else {
            None
        };
        Ok(TicketPage {
            tickets: rows.into_iter().map(TicketListItem::from).collect(),
            next_cursor,
            counts: None,
        })
    }

    /// The unread counters of the tabs, from the same visibility plan as the lists.
    pub async fn ticket_counts(&self, principal: &Principal) -> EngineResult<TicketCounts> {
        let context = self.view_context(principal).await?;
        self.counts_in(&context).await
    }

    async fn counts_in(&self, context: &ViewContext) -> EngineResult<TicketCounts> {
        let settings = &context.settings;
        if !settings.tab_counters {
            return Ok(TicketCounts {
                enabled: false,
                open: None,
                pending: None,
                chatbot: None,
                groups: None,
                private: None,
                cap: COUNTER_CAP,
            });
        }
        let mut scopes = vec![
            tab_scope(Tab::Open, settings),
            tab_scope(Tab::Pending, settings),
            tab_scope(Tab::Groups, settings),
        ];
        if settings.chatbot_tab {
            scopes.push(tab_scope(Tab::Chatbot, settings));
        }
        let counts = ticket_list::unread_counts(
            self.db(),
            context.tenant,
            &context.plan,
            &scopes,
            COUNTER_CAP,
        )
        .await?;
        let at = |n: usize| counts.get(n).copied().unwrap_or(0);
        let chatbot = settings.chatbot_tab.then(|| at(3));
        Ok(TicketCounts {
            enabled: true,
            open: Some(at(0)),
            pending: Some(at(1)),
            chatbot,
            groups: Some(at(2)),
            private: Some((at(0) + at(1) + chatbot.unwrap_or(0)).min(COUNTER_CAP)),
            cap: COUNTER_CAP,
        })
    }

    /// One visible ticket with its list fields and what the viewer may read of its chat.
    pub async fn ticket_detail(
        &self,
        principal: &Principal,
        id: TicketId,
    ) -> EngineResult<TicketDetail> {
        let context = self.view_context(principal).await?;
        let seen = self.seen(&context, id).await?;
        let listed = ticket_list::listed(self.db(), context.tenant, id).await?;
        let access = self.access(&context, &seen);
        Ok(TicketDetail {
            item: listed.into(),
            message_access: access.into(),
        })
    }

    fn access(&self, context: &ViewContext, seen: &Seen) -> MessageAccess {
        message_access(
            &context.plan.viewer,
            &seen.facts,
            &VisibilitySettings::from(&*context.settings),
            context.settings.feature_controls.spy,
        )
    }

    /// A page of the ticket's chat, newest first, `chat_messages_page_size` long. With
    /// `show_message_history` it spans the contact's tickets on the same connection, leaving out
    /// history stamped with a queue the viewer is not in (admins see all). A `user` on a pending
    /// ticket without `spy` → `Forbidden(SPY_DISABLED)`.
    pub async fn ticket_messages(
        &self,
        principal: &Principal,
        id: TicketId,
        before: Option<&str>,
    ) -> EngineResult<MessagePage> {
        let context = self.view_context(principal).await?;
        let seen = self.seen(&context, id).await?;
        let scope = self.chat_scope(&context, &seen)?;
        let before = before
            .filter(|c| !c.trim().is_empty())
            .map(decode_message_cursor)
            .transpose()?;
        let history = context.settings.show_message_history;
        let size = context.settings.chat_messages_page_size.max(1);
        let mut messages =
            ticket_list::chat_page(self.db(), context.tenant, scope, before, size + 1).await?;
        let more = messages.len() as i64 > size;
        messages.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next_cursor = if more {
            messages.last().map(encode_message_cursor)
        } else {
            None
        };
        Ok(MessagePage {
            messages,
            next_cursor,
            history,
        })
    }

    /// Which messages the viewer reads in the chat of a ticket it sees: the ticket's own, and with
    /// `show_message_history` the contact's other tickets on the connection, less history stamped
    /// with a queue the viewer is not in (admins see all). No access → `Forbidden(SPY_DISABLED)`.
    fn chat_scope<'a>(&self, context: &'a ViewContext, seen: &Seen) -> EngineResult<ChatScope<'a>> {
        let stamp_queues = match self.access(context, seen) {
            MessageAccess::None => return Err(EngineError::Forbidden(SPY_DISABLED.to_owned())),
            MessageAccess::All => None,
            MessageAccess::ViewerQueuesOnly => Some(context.plan.viewer.queue_ids.as_slice()),
        };
        let history = context.settings.show_message_history;
        Ok(ChatScope {
            ticket_id: seen.ticket.id,
            history: history.then_some((seen.ticket.contact_id, seen.ticket.connection_id)),
            stamp_queues,
        })
    }

    /// One message of a ticket's chat, under the rule of [`Engine::ticket_messages`]: a message
    /// the page would not show (another contact's, or history the viewer may not read) is
    /// `NotFound`, like a ticket the viewer does not see.
    pub async fn chat_message(
        &self,
        principal: &Principal,
        ticket: TicketId,
        message: MessageId,
    ) -> EngineResult<Message> {
        let context = self.view_context(principal).await?;
        let seen = self.seen(&context, ticket).await?;
        let scope = self.chat_scope(&context, &seen)?;
        let found = match atende_db::messages::get(self.db(), context.tenant, message).await {
            Ok(found) => found,
            Err(atende_db::DbError::NotFound) => return Err(EngineError::NotFound),
            Err(other) => return Err(other.into()),
        };
        if scope.admits(&found) {
            Ok(found)
        } else {
            Err(EngineError::NotFound)
        }
    }

    /// Marks a visible ticket's messages as seen (unread = 0) and tells the viewer's other panels.
    /// Reading a chat does not do this by itself; accepting and replying do (ticket commands).
    pub async fn mark_ticket_read(
        &self,
        principal: &Principal,
        id: TicketId,
    ) -> EngineResult<Ticket> {
        let context = self.view_context(principal).await?;
        let seen = self.seen(&context, id).await?;
        if self.access(&context, &seen) == MessageAccess::None {
            return Err(EngineError::Forbidden(SPY_DISABLED.to_owned()));
        }
        if !ticket_list::mark_read(self.db(), context.tenant, id).await? {
            return Ok(seen.ticket);
        }
        let ticket = atende_db::tickets::get(self.db(), context.tenant, id).await?;
        // Who may see the ticket did not change: no "before" facts.
        self.publish_ticket(context.tenant, EventKind::TicketUpdated, &ticket, None)
            .await?;
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_cursors_round_trip_and_belong_to_one_order() {
        let cursor = encode_list_cursor(SortKey::LastInbound, 1_760_000_000_123, TicketId(42));
        assert!(
            cursor
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let decoded = decode_list_cursor(&cursor, SortKey::LastInbound).ok();
        assert_eq!(decoded, Some((1_760_000_000_123, TicketId(42))));
        assert!(decode_list_cursor(&cursor, SortKey::UpdatedAt).is_err());
        assert!(decode_list_cursor("garbage!", SortKey::LastInbound).is_err());
        assert!(decode_list_cursor(&CURSOR.encode("ti:x:1"), SortKey::LastInbound).is_err());
    }

    #[test]
    fn message_cursors_round_trip() {
        let encoded = CURSOR.encode("m:1760000000000:7");
        let decoded = decode_message_cursor(&encoded).ok();
        assert_eq!(decoded, Some((Timestamp(1_760_000_000_000), MessageId(7))));
        assert!(decode_message_cursor("m:1:2").is_err());
    }

    #[test]
    fn paused_tickets_show_under_open_and_groups_only_in_their_tab() {
        let settings = Settings::default();
        let open = tab_scope(Tab::Open, &settings);
        assert!(open.statuses.contains(&TicketStatus::Paused));
        for tab in [Tab::Open, Tab::Pending, Tab::Closed] {
            assert_eq!(tab_scope(tab, &settings).group, Some(false));
        }
        assert_eq!(tab_scope(Tab::Groups, &settings).group, Some(true));
    }

    #[test]
    fn bot_tickets_leave_pending_only_with_the_chatbot_tab() {
        let mut settings = Settings {
            chatbot_tab: false,
            ..Settings::default()
        };
        assert_eq!(tab_scope(Tab::Pending, &settings).bot, None);
        assert!(query_scope(Some(Tab::Chatbot), None, &settings).is_err());
        settings.chatbot_tab = true;
        assert_eq!(tab_scope(Tab::Pending, &settings).bot, Some(false));
        assert_eq!(
            query_scope(Some(Tab::Chatbot), None, &settings)
                .ok()
                .map(|s| s.bot),
            Some(Some(true))
        );
    }

    #[test]
    fn status_is_a_synonym_of_the_status_tabs_and_narrows_a_tab() {
        let settings = Settings::default();
        let by_status = query_scope(None, Some(TicketStatus::Pending), &settings).ok();
        assert_eq!(by_status, Some(tab_scope(Tab::Pending, &settings)));
        let paused = query_scope(Some(Tab::Open), Some(TicketStatus::Paused), &settings).ok();
        assert_eq!(paused.map(|s| s.statuses), Some(vec![TicketStatus::Paused]));
        assert!(query_scope(Some(Tab::Open), Some(TicketStatus::Closed), &settings).is_err());
        let closed_groups =
            query_scope(Some(Tab::Groups), Some(TicketStatus::Closed), &settings).ok();
        assert_eq!(
            closed_groups.map(|s| (s.statuses, s.group)),
            Some((vec![TicketStatus::Closed], Some(true)))
        );
        let everything = query_scope(None, None, &settings).ok();
        assert_eq!(
            everything.map(|s| s.statuses.len()),
            Some(TicketStatus::ALL.len())
        );
    }
}
