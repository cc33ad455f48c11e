//! Ticket lists, tab counters and chat pages for one viewer (SPEC §5, §13), in SQL rendered from
//! the viewer's visibility plan ([`Plan`]): this module never decides who sees what, it only
//! writes the plan's branches as SQL (`Plan::admits` is the same plan evaluated in memory; the
//! `visibility_sql` test keeps the two equal).
//!
//! Shape of a page (ARCHITECTURE "Traps"): one arm per (status, plan branch, partition), each
//! `ORDER BY <sort key> DESC, id DESC LIMIT n` over an index that starts with the arm's
//! equalities (tenant, status, queue or owner) and ends in the sort key, so each arm reads at most
//! `n` entries; the arms are merged with `UNION` (a ticket admitted by two branches appears once)
//! and cut to `n`. A branch that no index column narrows (an admin's "everything") is read queue by
//! queue, plus the tickets without a queue. Counters count each tab's unread tickets with the same
//! branches, made disjoint (each arm leaves out what earlier branches admitted) so a `UNION ALL`
//! adds them up, over partial indexes of unread tickets, stopping at a cap.
//!
//! Sort keys: `updated_at`, or `COALESCE(last_inbound_at, created_at)`: a ticket that never got an
//! inbound message sorts by its creation time, so the key is never NULL and keyset paging has one
//! total order on both stores (migration 0004 indexes exactly these expressions).

pub mod bench_data;
mod sql;

use crate::queues::{QUEUE_IN_TENANT, USER_IN_TENANT, parse_enum};
use crate::tags::TAG_IN_TENANT;
use crate::{Backend, Db, DbError, DbResult, read, write};
use atende_domain::visibility::{Branch, Fact, Literal, Plan, Viewer};
use atende_domain::{
    ConnectionId, ContactId, FlowId, Message, MessageId, QueueId, TagId, TenantId, Ticket,
    TicketId, TicketStatus, Timestamp, UserId,
};
use sql::Sql;
use std::collections::HashMap;

/// Above this many queues, a branch without a narrowing column is read in one arm (sorted by the
/// store) rather than one arm per queue.
const MAX_QUEUE_PARTITIONS: usize = 64;

/// The order of a list, newest first (`order_by_last_message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// The last message from the contact; a ticket without one counts from its creation.
    LastInbound,
    UpdatedAt,
}

impl SortKey {
    fn expr(self) -> &'static str {
        match self {
            SortKey::LastInbound => "COALESCE(t.last_inbound_at, t.created_at)",
            SortKey::UpdatedAt => "t.updated_at",
        }
    }

    /// The key of a ticket, as the store computes it.
    pub fn of(self, ticket: &Ticket) -> i64 {
        match self {
            SortKey::LastInbound => ticket.last_inbound_at.unwrap_or(ticket.created_at).0,
            SortKey::UpdatedAt => ticket.updated_at.0,
        }
    }
}

/// Which tickets a tab holds, before visibility (the caller maps tabs and settings to this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub statuses: Vec<TicketStatus>,
    /// `Some(true)`: group tickets only; `Some(false)`: no group tickets.
    pub group: Option<bool>,
    /// `Some(true)`: only tickets held by a bot or an integration; `Some(false)`: none of them.
    pub bot: Option<bool>,
}

/// What the client narrows the list to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub queue_id: Option<QueueId>,
    pub owner_id: Option<UserId>,
    /// A tag of the ticket's contact.
    pub tag_id: Option<TagId>,
    /// `Some(true)`: only tickets with unread messages; `Some(false)`: only tickets without.
    pub unread: Option<bool>,
    /// Contact name (case- and accent-insensitive substring), phone digits, or exact protocol.
    pub search: Option<String>,
    /// Closed tickets count only when their sort key is at least this (`hide_old_tickets`).
    pub closed_since: Option<i64>,
}

/// The viewer's plan and what partitioning needs to know about the tenant.
#[derive(Debug, Clone, Copy)]
pub struct Visibility<'a> {
    pub plan: &'a Plan,
    /// Every queue of the tenant; only read when [`needs_tenant_queues`] says so.
    pub tenant_queue_ids: &'a [QueueId],
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct PageRequest<'a> {
    pub scope: &'a Scope,
    pub filter: &'a Filter,
    pub sort: SortKey,
    /// The (sort key, id) of the last ticket of the previous page.
    pub after: Option<(i64, TicketId)>,
    pub limit: i64,
}

/// The contact fields a list row shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactBrief {
    pub id: ContactId,
    pub name: String,
    pub phone: Option<String>,
    pub avatar_url: Option<String>,
}

/// A ticket with what a list row needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTicket {
    pub ticket: Ticket,
    pub contact: ContactBrief,
    /// The contact's tags.
    pub tag_ids: Vec<TagId>,
    /// The value the list is sorted by (for the next cursor).
    pub sort_key: i64,
}

impl ListedTicket {
    pub fn bot_active(&self) -> bool {
        self.ticket.bot_flow_id.is_some() || self.ticket.integration_active
    }
}

/// Whether a page of `scope` reads [`Visibility::tenant_queue_ids`] (a branch that no index column
/// narrows is read queue by queue). Callers skip the query for the tenant's queues otherwise.
pub fn needs_tenant_queues(plan: &Plan, scope: &Scope, filter: &Filter) -> bool {
    if scope.group == Some(true) || filter.queue_id.is_some() || filter.owner_id.is_some() {
        return false;
    }
    scope.statuses.iter().any(|status| {
        let known = Known {
            status: *status,
            group: scope.group,
            bot: scope.bot,
            queue: None,
            owner: None,
        };
        plan.branches.iter().any(|branch| {
            driver(branch).is_none() && remaining(branch, &known, &plan.viewer).is_some()
        })
    })
}

/// The literal an arm of this branch can seek on, if any.
fn driver(branch: &Branch) -> Option<Fact> {
    [
        Fact::QueueInViewers,
        Fact::OwnerIsViewer,
        Fact::QueueIsNull,
        Fact::ViewerInWallet,
    ]
    .into_iter()
    .find(|fact| branch.all.contains(&Literal::is(*fact)))
}

/// What every ticket of an arm is known to be, so literals can be settled before rendering.
#[derive(Debug, Clone, Copy)]
struct Known {
    status: TicketStatus,
    group: Option<bool>,
    bot: Option<bool>,
    /// `Some(None)`: known to have no queue.
    queue: Option<Option<QueueId>>,
    owner: Option<Option<UserId>>,
}

/// `Some(true)`: the literal holds for every ticket of the arm; `Some(false)`: for none.
fn settle(literal: Literal, known: &Known, viewer: &Viewer) -> Option<bool> {
    let fact = match literal.fact {
        Fact::OwnerIsViewer => known.owner.map(|owner| owner == Some(viewer.user_id)),
        Fact::OwnerIsNull => known.owner.map(|owner| owner.is_none()),
        Fact::QueueIsNull => known.queue.map(|queue| queue.is_none()),
        Fact::QueueInViewers if viewer.queue_ids.is_empty() => Some(false),
        Fact::QueueInViewers => known
            .queue
            .map(|queue| queue.is_some_and(|q| viewer.queue_ids.contains(&q))),
        Fact::IsGroup => known.group,
        Fact::IsClosed => Some(known.status == TicketStatus::Closed),
        Fact::BotActive => known.bot,
        Fact::WalletOverflowed | Fact::WalletHasOwners | Fact::ViewerInWallet => None,
    };
    fact.map(|value| value == literal.holds)
}

/// The literals of `branch` still to test on the arm's tickets; `None` when the arm admits none.
fn remaining(branch: &Branch, known: &Known, viewer: &Viewer) -> Option<Vec<Literal>> {
    let mut left = Vec::new();
    for literal in &branch.all {
        match settle(*literal, known, viewer) {
            Some(true) => {}
            Some(false) => return None,
            None => left.push(*literal),
        }
    }
    Some(left)
}

fn status_sql(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Pending => "'pending'",
        TicketStatus::Open => "'open'",
        TicketStatus::Paused => "'paused'",
        TicketStatus::Closed => "'closed'",
    }
}

/// How a literal is written. `Seek` keeps the index-friendly form of the seekable facts;
/// `Filter` hides them from the planner (unary `+`) so it stays on the arm's chosen index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Seek,
    Filter,
}

/// The fact as a condition that is never NULL, so `NOT (…)` of it is exact.
fn fact_sql(sql: &mut Sql, fact: Fact, viewer: &Viewer) {
    match fact {
        Fact::OwnerIsViewer => {
            sql.push("(t.owner_id IS NOT NULL AND t.owner_id = ")
                .int(viewer.user_id.0)
                .push(")");
        }
        Fact::OwnerIsNull => {
            sql.push("t.owner_id IS NULL");
        }
        Fact::QueueIsNull => {
            sql.push("t.queue_id IS NULL");
        }
        Fact::QueueInViewers if viewer.queue_ids.is_empty() => {
            sql.push("1 = 0");
        }
        Fact::QueueInViewers => {
            sql.push("(t.queue_id IS NOT NULL AND t.queue_id IN ")
                .int_list(viewer.queue_ids.iter().map(|q| q.0))
                .push(")");
        }
        Fact::IsGroup => {
            sql.push("t.is_group = TRUE");
        }
        Fact::IsClosed => {
            sql.push("t.status = 'closed'");
        }
        Fact::BotActive => {
            sql.push("t.bot_active = TRUE");
        }
        Fact::WalletOverflowed => {
            sql.push("t.wallet_overflowed = TRUE");
        }
        // The wallet is found by its contact (the primary key); the tenant check stays but is
        // kept off the planner's index choice (`+`), which would otherwise read the tenant's
        // whole wallet per ticket.
        Fact::WalletHasOwners => {
            sql.push(
                "EXISTS (SELECT 1 FROM wallets w WHERE w.contact_id = t.contact_id \
                 AND +w.tenant_id = t.tenant_id)",
            );
        }
        Fact::ViewerInWallet => {
            sql.push(
                "EXISTS (SELECT 1 FROM wallets w WHERE w.contact_id = t.contact_id \
                 AND +w.tenant_id = t.tenant_id AND w.user_id = ",
            )
            .int(viewer.user_id.0)
            .push(")");
        }
    }
}

/// ` AND <literal>` for a conjunct of an arm (NULL counts as false there, so the seekable facts
/// can use their plain forms).
fn and_literal(sql: &mut Sql, tenant: TenantId, literal: Literal, viewer: &Viewer, form: Form) {
    sql.push(" AND ");
    match (literal.fact, literal.holds) {
        (Fact::OwnerIsViewer, true) => {
            sql.push(if form == Form::Seek {
                "t.owner_id = "
            } else {
                "+t.owner_id = "
            })
            .int(viewer.user_id.0);
        }
        // The viewer's wallet contacts lead: their tickets are few next to a whole status.
        (Fact::ViewerInWallet, true) if form == Form::Seek => {
            sql.push("t.contact_id IN (SELECT w.contact_id FROM wallets w WHERE w.tenant_id = ")
                .int(tenant.0)
                .push(" AND w.user_id = ")
                .int(viewer.user_id.0)
                .push(")");
        }
        (Fact::QueueInViewers, true) if !viewer.queue_ids.is_empty() => {
            sql.push(if form == Form::Seek {
                "t.queue_id IN "
            } else {
                "+t.queue_id IN "
            })
            .int_list(viewer.queue_ids.iter().map(|q| q.0));
        }
        (fact, true) => fact_sql(sql, fact, viewer),
        (fact, false) => {
            sql.push("NOT (");
            fact_sql(sql, fact, viewer);
            sql.push(")");
        }
    }
}

/// ` AND NOT (l1 AND l2 …)`: the arm leaves out what an earlier branch already admitted.
fn and_not_branch(sql: &mut Sql, literals: &[Literal], viewer: &Viewer) {
    sql.push(" AND NOT (");
    for (n, literal) in literals.iter().enumerate() {
        if n > 0 {
            sql.push(" AND ");
        }
        if literal.holds {
            fact_sql(sql, literal.fact, viewer);
        } else {
            sql.push("NOT (");
            fact_sql(sql, literal.fact, viewer);
            sql.push(")");
        }
    }
    sql.push(")");
}

/// `%…%` with LIKE's wildcards escaped (used with `ESCAPE '\'`).
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The conditions of the arm that do not come from the plan: tab scope and client filters.
fn and_scope_and_filter(
    sql: &mut Sql,
    request: &PageRequest<'_>,
    status: TicketStatus,
    form: Form,
) {
    let scope = request.scope;
    let filter = request.filter;
    match scope.group {
        Some(true) => {
            sql.push(" AND t.is_group = TRUE");
        }
        Some(false) => {
            sql.push(" AND t.is_group = FALSE");
        }
        None => {}
    }
    match scope.bot {
        Some(true) => {
            sql.push(" AND t.bot_active = TRUE");
        }
        Some(false) => {
            sql.push(" AND t.bot_active = FALSE");
        }
        None => {}
    }
    if let Some(queue) = filter.queue_id {
        sql.push(if form == Form::Seek {
            " AND t.queue_id = "
        } else {
            " AND +t.queue_id = "
        })
        .int(queue.0);
    }
    if let Some(owner) = filter.owner_id {
        sql.push(if form == Form::Seek {
            " AND t.owner_id = "
        } else {
            " AND +t.owner_id = "
        })
        .int(owner.0);
    }
    if let Some(tag) = filter.tag_id {
        sql.push(
            " AND EXISTS (SELECT 1 FROM contact_tags ct WHERE ct.tenant_id = t.tenant_id \
             AND ct.contact_id = t.contact_id AND ct.tag_id = ",
        )
        .int(tag.0)
        .push(")");
    }
    match filter.unread {
        Some(true) => {
            sql.push(" AND t.unread > 0");
        }
        Some(false) => {
            sql.push(" AND t.unread = 0");
        }
        None => {}
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let digits: String = search.chars().filter(char::is_ascii_digit).collect();
        sql.push(" AND (t.protocol = ")
            .text(search)
            .push(
                " OR EXISTS (SELECT 1 FROM contacts sc WHERE sc.tenant_id = t.tenant_id \
                 AND sc.id = t.contact_id AND (sc.search_text LIKE ",
            )
            .text(like_pattern(&atende_domain::text::fold(search)))
            .push(" ESCAPE '\\'");
        if !digits.is_empty() {
            sql.push(" OR sc.phone LIKE ")
                .text(like_pattern(&digits))
                .push(" ESCAPE '\\'");
        }
        sql.push(")))");
    }
    if status == TicketStatus::Closed
        && let Some(since) = filter.closed_since
    {
        sql.push(" AND ")
            .push(request.sort.expr())
            .push(" >= ")
            .int(since);
    }
}

/// ` AND key <= k AND (key, id) < (k, i)`: the keyset cursor. The plain bound is the index range
/// SQLite seeks (it does not seek on a row value over an expression); the row value is the exact
/// condition, which PostgreSQL also seeks on and, unlike an `OR`, lets it keep one generic plan
/// for the prepared statement instead of planning every page again.
fn and_before(sql: &mut Sql, key: &'static str, id: &'static str, at_key: i64, at_id: i64) {
    sql.push(" AND ")
        .push(key)
        .push(" <= ")
        .int(at_key)
        .push(" AND (")
        .push(key)
        .push(", ")
        .push(id)
        .push(") < (")
        .int(at_key)
        .push(", ")
        .int(at_id)
        .push(")");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Partition {
    Any,
    Queue(QueueId),
    NoQueue,
}

fn partitions(branch: &Branch, request: &PageRequest<'_>, vis: Visibility<'_>) -> Vec<Partition> {
    let filter = request.filter;
    if request.scope.group == Some(true) || filter.queue_id.is_some() || filter.owner_id.is_some() {
        return vec![Partition::Any];
    }
    match driver(branch) {
        Some(Fact::QueueInViewers) => {
            let mut queues = vis.plan.viewer.queue_ids.clone();
            queues.sort_unstable();
            queues.dedup();
            queues.into_iter().map(Partition::Queue).collect()
        }
        Some(_) => vec![Partition::Any],
        None if vis.tenant_queue_ids.len() > MAX_QUEUE_PARTITIONS => vec![Partition::Any],
        None => vis
            .tenant_queue_ids
            .iter()
            .map(|q| Partition::Queue(*q))
            .chain([Partition::NoQueue])
            .collect(),
    }
}

/// `SELECT t.id AS id, <key> AS k FROM tickets t WHERE … ORDER BY <key> DESC, t.id DESC LIMIT n`
/// for every arm of the page; empty when the viewer can see nothing of this scope.
fn page_arms(tenant: TenantId, vis: Visibility<'_>, request: &PageRequest<'_>) -> Vec<Sql> {
    let viewer = &vis.plan.viewer;
    let key = request.sort.expr();
    // In the Groups tab every arm reads the small partial index of group tickets.
    let form = if request.scope.group == Some(true) {
        Form::Filter
    } else {
        Form::Seek
    };
    let mut arms = Vec::new();
    for status in &request.scope.statuses {
        for branch in &vis.plan.branches {
            for partition in partitions(branch, request, vis) {
                let queue = match partition {
                    Partition::Any => request.filter.queue_id.map(Some),
                    Partition::Queue(q) => Some(Some(q)),
                    Partition::NoQueue => Some(None),
                };
                let known = Known {
                    status: *status,
                    group: request.scope.group,
                    bot: request.scope.bot,
                    queue,
                    owner: request.filter.owner_id.map(Some),
                };
                let Some(literals) = remaining(branch, &known, viewer) else {
                    continue;
                };
                let mut arm = Sql::new("SELECT t.id AS id, ");
                arm.push(key)
                    .push(" AS k FROM tickets t WHERE t.tenant_id = ")
                    .int(tenant.0)
                    .push(" AND t.status = ")
                    .push(status_sql(*status));
                match partition {
                    Partition::Any => {}
                    Partition::Queue(q) => {
                        arm.push(" AND t.queue_id = ").int(q.0);
                    }
                    Partition::NoQueue => {
                        arm.push(" AND t.queue_id IS NULL");
                    }
                }
                and_scope_and_filter(&mut arm, request, *status, form);
                for literal in literals {
                    and_literal(&mut arm, tenant, literal, viewer, form);
                }
                if let Some((after_key, after_id)) = request.after {
                    and_before(&mut arm, key, "t.id", after_key, after_id.0);
                }
                arm.push(" ORDER BY ")
                    .push(key)
                    .push(" DESC, t.id DESC LIMIT ")
                    .literal(request.limit);
                arms.push(arm);
            }
        }
    }
    arms
}

const LISTED_COLUMNS: &str = "SELECT t.id, t.tenant_id, t.contact_id, t.connection_id, t.status,
        t.owner_id, t.queue_id, t.is_group, t.protocol, t.bot_flow_id,
        t.integration_session IS NOT NULL AS integration_active, t.wallet_overflowed, t.unread,
        t.last_message, t.last_message_at, t.last_inbound_at, t.out_of_hours_sent,
        t.pause_reason, t.closed_at, t.created_at, t.updated_at,
        c.name AS contact_name, c.phone AS contact_phone, c.avatar_url AS contact_avatar_url";

/// The whole page query, or `None` when no arm can admit a ticket.
fn page_sql(tenant: TenantId, vis: Visibility<'_>, request: &PageRequest<'_>) -> Option<Sql> {
    let arms = page_arms(tenant, vis, request);
    if arms.is_empty() || request.limit <= 0 {
        return None;
    }
    let mut sql = Sql::new(LISTED_COLUMNS);
    sql.push(", p.k AS sort_key FROM (");
    for (n, arm) in arms.into_iter().enumerate() {
        if n > 0 {
            sql.push(" UNION ");
        }
        sql.push("SELECT id, k FROM (").append(arm).push(") a");
    }
    // CROSS JOIN keeps the page as SQLite's outer loop: with many arms its size estimate grows
    // and the planner would otherwise walk every ticket of the tenant and probe the page.
    sql.push(" ORDER BY k DESC, id DESC LIMIT ")
        .literal(request.limit)
        .push(") p CROSS JOIN tickets t CROSS JOIN contacts c WHERE t.tenant_id = ")
        .int(tenant.0)
        .push(
            " AND t.id = p.id AND c.tenant_id = t.tenant_id AND c.id = t.contact_id \
             ORDER BY p.k DESC, p.id DESC",
        );
    Some(sql)
}

#[derive(sqlx::FromRow)]
struct ListedRow {
    id: i64,
    tenant_id: i64,
    contact_id: i64,
    connection_id: i64,
    status: String,
    owner_id: Option<i64>,
    queue_id: Option<i64>,
    is_group: bool,
    protocol: Option<String>,
    bot_flow_id: Option<i64>,
    integration_active: bool,
    wallet_overflowed: bool,
    unread: i64,
    last_message: String,
    last_message_at: Option<i64>,
    last_inbound_at: Option<i64>,
    out_of_hours_sent: i64,
    pause_reason: Option<String>,
    closed_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    contact_name: String,
    contact_phone: Option<String>,
    contact_avatar_url: Option<String>,
    sort_key: i64,
}

impl ListedRow {
    fn into_listed(self, tag_ids: Vec<TagId>) -> DbResult<ListedTicket> {
        Ok(ListedTicket {
            ticket: Ticket {
                id: TicketId(self.id),
                tenant_id: TenantId(self.tenant_id),
                contact_id: ContactId(self.contact_id),
                connection_id: ConnectionId(self.connection_id),
                status: parse_enum(&self.status, TicketStatus::parse, "tickets.status")?,
                owner_id: self.owner_id.map(UserId),
                queue_id: self.queue_id.map(QueueId),
                is_group: self.is_group,
                protocol: self.protocol.unwrap_or_default(),
                bot_flow_id: self.bot_flow_id.map(FlowId),
                integration_active: self.integration_active,
                wallet_overflowed: self.wallet_overflowed,
                unread: self.unread,
                last_message: self.last_message,
                last_message_at: self.last_message_at.map(Timestamp),
                last_inbound_at: self.last_inbound_at.map(Timestamp),
                out_of_hours_sent: self.out_of_hours_sent,
                pause_reason: self.pause_reason,
                closed_at: self.closed_at.map(Timestamp),
                created_at: Timestamp(self.created_at),
                updated_at: Timestamp(self.updated_at),
            },
            contact: ContactBrief {
                id: ContactId(self.contact_id),
                name: self.contact_name,
                phone: self.contact_phone,
                avatar_url: self.contact_avatar_url,
            },
            tag_ids,
            sort_key: self.sort_key,
        })
    }
}

/// One page of the tickets of `request.scope` the viewer may see, newest first. Ask for one more
/// than the page size to know whether another page follows.
pub async fn page(
    db: &Db,
    tenant: TenantId,
    vis: Visibility<'_>,
    request: &PageRequest<'_>,
) -> DbResult<Vec<ListedTicket>> {
    let Some(sql) = page_sql(tenant, vis, request) else {
        return Ok(Vec::new());
    };
    let rows: Vec<ListedRow> = read!(db, pool => {
        let mut query = sql.builder_for(pool);
        query.build_query_as().fetch_all(pool).await?
    });
    with_tags(db, tenant, rows).await
}

/// The store's query plan of a page (SQLite `EXPLAIN QUERY PLAN` details, PostgreSQL `EXPLAIN`
/// lines), for tests and the benchmark to check that every arm reads an index.
pub async fn explain_page(
    db: &Db,
    tenant: TenantId,
    vis: Visibility<'_>,
    request: &PageRequest<'_>,
) -> DbResult<Vec<String>> {
    match page_sql(tenant, vis, request) {
        Some(sql) => explain(db, sql).await,
        None => Ok(Vec::new()),
    }
}

/// The store's query plan of [`unread_counts`].
pub async fn explain_counts(
    db: &Db,
    tenant: TenantId,
    plan: &Plan,
    scopes: &[Scope],
    cap: i64,
) -> DbResult<Vec<String>> {
    match counts_sql(tenant, plan, scopes, cap) {
        Some(sql) => explain(db, sql).await,
        None => Ok(Vec::new()),
    }
}

async fn explain(db: &Db, query: Sql) -> DbResult<Vec<String>> {
    let (mut sql, column) = match db.backend() {
        Backend::Sqlite => (Sql::new("EXPLAIN QUERY PLAN "), 3),
        Backend::Postgres => (Sql::new("EXPLAIN "), 0),
    };
    sql.append(query);
    let lines: Vec<String> = read!(db, pool => {
        let mut query = sql.builder_for(pool);
        let rows = query.build().fetch_all(pool).await?;
        let mut lines = Vec::with_capacity(rows.len());
        for row in &rows {
            lines.push(sqlx::Row::try_get::<String, _>(row, column)?);
        }
        lines
    });
    Ok(lines)
}

/// The page query's text with `$n` placeholders (for reading it in tests and benchmarks).
pub fn page_sql_text(tenant: TenantId, vis: Visibility<'_>, request: &PageRequest<'_>) -> String {
    page_sql(tenant, vis, request)
        .map(|sql| sql.text_with_placeholders())
        .unwrap_or_default()
}

async fn with_tags(db: &Db, tenant: TenantId, rows: Vec<ListedRow>) -> DbResult<Vec<ListedTicket>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut contacts: Vec<i64> = rows.iter().map(|row| row.contact_id).collect();
    contacts.sort_unstable();
    contacts.dedup();
    let mut sql = Sql::new("SELECT contact_id, tag_id FROM contact_tags WHERE tenant_id = ");
    sql.int(tenant.0)
        .push(" AND contact_id IN ")
        .int_list(contacts)
        .push(" ORDER BY contact_id, tag_id");
    let pairs: Vec<(i64, i64)> = read!(db, pool => {
        let mut query = sql.builder_for(pool);
        query.build_query_as().fetch_all(pool).await?
    });
    let mut tags: HashMap<i64, Vec<TagId>> = HashMap::new();
    for (contact, tag) in pairs {
        tags.entry(contact).or_default().push(TagId(tag));
    }
    rows.into_iter()
        .map(|row| {
            let tag_ids = tags.get(&row.contact_id).cloned().unwrap_or_default();
            row.into_listed(tag_ids)
        })
        .collect()
}

/// One ticket with its list fields (whoever asks; check visibility first).
pub async fn listed(db: &Db, tenant: TenantId, id: TicketId) -> DbResult<ListedTicket> {
    let mut sql = Sql::new(LISTED_COLUMNS);
    sql.push(
        ", CAST(0 AS BIGINT) AS sort_key FROM tickets t JOIN contacts c ON c.tenant_id = t.tenant_id \
         AND c.id = t.contact_id WHERE t.tenant_id = ",
    )
    .int(tenant.0)
    .push(" AND t.id = ")
    .int(id.0);
    let rows: Vec<ListedRow> = read!(db, pool => {
        let mut query = sql.builder_for(pool);
        query.build_query_as().fetch_all(pool).await?
    });
    if rows.is_empty() {
        return Err(DbError::NotFound);
    }
    with_tags(db, tenant, rows)
        .await?
        .pop()
        .ok_or(DbError::NotFound)
}

/// How many tickets of each scope the viewer may see that have unread messages, each counted up to
/// `cap` (a counter past the cap reads "cap or more": counting further costs time and tells an
/// agent nothing). One value per scope, in order.
pub async fn unread_counts(
    db: &Db,
    tenant: TenantId,
    plan: &Plan,
    scopes: &[Scope],
    cap: i64,
) -> DbResult<Vec<i64>> {
    let mut totals = vec![0_i64; scopes.len()];
    let Some(sql) = counts_sql(tenant, plan, scopes, cap) else {
        return Ok(totals);
    };
    let rows: Vec<(i64, i64)> = read!(db, pool => {
        let mut query = sql.builder_for(pool);
        query.build_query_as().fetch_all(pool).await?
    });
    for (scope, count) in rows {
        if let Some(total) = usize::try_from(scope).ok().and_then(|i| totals.get_mut(i)) {
            *total += count;
        }
    }
    Ok(totals.into_iter().map(|total| total.min(cap)).collect())
}

/// Per scope, `SELECT <scope index>, COUNT(*) FROM (<arm> UNION ALL <arm> … LIMIT cap)`: the arms
/// are disjoint, so their rows add up, and the store stops reading at the cap.
fn counts_sql(tenant: TenantId, plan: &Plan, scopes: &[Scope], cap: i64) -> Option<Sql> {
    let viewer = &plan.viewer;
    let mut per_scope = Vec::new();
    for (index, scope) in scopes.iter().enumerate() {
        let mut arms = Vec::new();
        // Group or private is the third column of the unread indexes: a scope of both is counted
        // as two disjoint halves so every arm can seek past it.
        let groups = match scope.group {
            Some(group) => vec![group],
            None => vec![false, true],
        };
        let statuses = scope
            .statuses
            .iter()
            .flat_map(|s| groups.iter().map(move |g| (*s, *g)));
        for (status, group) in statuses {
            let known = Known {
                status,
                group: Some(group),
                bot: scope.bot,
                queue: None,
                owner: None,
            };
            'branch: for (n, branch) in plan.branches.iter().enumerate() {
                let Some(literals) = remaining(branch, &known, viewer) else {
                    continue;
                };
                let mut exclusions = Vec::new();
                for earlier in &plan.branches[..n] {
                    match remaining(earlier, &known, viewer) {
                        // Admits nothing here: nothing to leave out.
                        None => {}
                        // Admits everything here: this arm would count nothing new.
                        Some(left) if left.is_empty() => continue 'branch,
                        Some(left) => exclusions.push(left),
                    }
                }
                let mut arm = Sql::new("SELECT 1 AS one FROM tickets t WHERE t.tenant_id = ");
                arm.int(tenant.0)
                    .push(" AND t.status = ")
                    .push(status_sql(status))
                    .push(" AND t.unread > 0")
                    .push(if group {
                        " AND t.is_group = TRUE"
                    } else {
                        " AND t.is_group = FALSE"
                    });
                match scope.bot {
                    Some(true) => {
                        arm.push(" AND t.bot_active = TRUE");
                    }
                    Some(false) => {
                        arm.push(" AND t.bot_active = FALSE");
                    }
                    None => {}
                }
                for literal in literals {
                    and_literal(&mut arm, tenant, literal, viewer, Form::Seek);
                }
                for left in &exclusions {
                    and_not_branch(&mut arm, left, viewer);
                }
                arms.push(arm);
            }
        }
        let mut arms = arms.into_iter();
        let Some(first) = arms.next() else {
            continue;
        };
        let mut sql = Sql::new("SELECT ");
        sql.int(i64::try_from(index).unwrap_or(i64::MAX))
            .push(" AS scope, COUNT(*) AS n FROM (")
            .append(first);
        for arm in arms {
            sql.push(" UNION ALL ").append(arm);
        }
        sql.push(" LIMIT ").literal(cap.max(0)).push(") x");
        per_scope.push(sql);
    }
    let mut per_scope = per_scope.into_iter();
    let mut sql = per_scope.next()?;
    for scope in per_scope {
        sql.push(" UNION ALL ").append(scope);
    }
    Some(sql)
}

/// A queue, owner or tag named in the filter that is not in this tenant →
/// `UnknownReference { field: "queue_id" | "owner_id" | "tag_id" }`.
pub async fn check_filter_refs(db: &Db, tenant: TenantId, filter: &Filter) -> DbResult<()> {
    let checks = [
        (filter.queue_id.map(|q| q.0), QUEUE_IN_TENANT, "queue_id"),
        (filter.owner_id.map(|u| u.0), USER_IN_TENANT, "owner_id"),
        (filter.tag_id.map(|t| t.0), TAG_IN_TENANT, "tag_id"),
    ];
    for (id, sql, field) in checks {
        let Some(id) = id else { continue };
        let found: Option<i64> = read!(db, pool => {
            sqlx::query_scalar(sql).bind(tenant.0).bind(id).fetch_optional(pool).await?
        });
        if found.is_none() {
            return Err(DbError::UnknownReference { field, id });
        }
    }
    Ok(())
}

/// Every queue id of the tenant, ascending.
pub async fn tenant_queue_ids(db: &Db, tenant: TenantId) -> DbResult<Vec<QueueId>> {
    const SQL: &str = "SELECT id FROM queues WHERE tenant_id = $1 ORDER BY id";
    let ids: Vec<i64> = read!(db, pool => {
        sqlx::query_scalar(SQL).bind(tenant.0).fetch_all(pool).await?
    });
    Ok(ids.into_iter().map(QueueId).collect())
}

/// Marks the ticket's messages as seen (unread = 0). `false` when it had none unread; a ticket of
/// another tenant → `NotFound`. Does not touch `updated_at`: reading does not reorder lists.
pub async fn mark_read(db: &Db, tenant: TenantId, id: TicketId) -> DbResult<bool> {
    const SQL: &str =
        "UPDATE tickets SET unread = 0 WHERE tenant_id = $1 AND id = $2 AND unread <> 0";
    const EXISTS: &str = "SELECT id FROM tickets WHERE tenant_id = $1 AND id = $2";
    let changed = write!(db, pool => {
        sqlx::query(SQL).bind(tenant.0).bind(id.0).execute(pool).await?.rows_affected()
    });
    if changed > 0 {
        return Ok(true);
    }
    let found: Option<i64> = read!(db, pool => {
        sqlx::query_scalar(EXISTS).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    found.map(|_| false).ok_or(DbError::NotFound)
}

/// Which messages a chat page shows.
#[derive(Debug, Clone, Copy)]
pub struct ChatScope<'a> {
    pub ticket_id: TicketId,
    /// `show_message_history`: every message of this contact on this connection, across tickets.
    pub history: Option<(ContactId, ConnectionId)>,
    /// Renders `visibility::message_stamp_visible` for a viewer limited to these queues: a message
    /// of another ticket shows only when stamped with no queue or one of them. `None`: all.
    pub stamp_queues: Option<&'a [QueueId]>,
}

impl ChatScope<'_> {
    /// Whether `message` is part of the chat: the same rule [`chat_page`] writes in SQL, for a
    /// single message (its file, say) without reading a page.
    pub fn admits(&self, message: &Message) -> bool {
        match self.history {
            None => message.ticket_id == self.ticket_id,
            Some((contact, connection)) => {
                message.contact_id == contact
                    && message.connection_id == connection
                    && (message.ticket_id == self.ticket_id
                        || self.stamp_queues.is_none_or(|queues| {
                            atende_domain::visibility::stamp_in_queues(queues, message.queue_stamp)
                        }))
            }
        }
    }
}

/// A page of a chat, newest first (by `sent_at`, then id). `before` is the (`sent_at`, id) of the
/// oldest message of the previous page.
pub async fn chat_page(
    db: &Db,
    tenant: TenantId,
    scope: ChatScope<'_>,
    before: Option<(Timestamp, MessageId)>,
    limit: i64,
) -> DbResult<Vec<Message>> {
    let mut sql = Sql::new(
        "SELECT m.id, m.tenant_id, m.ticket_id, m.connection_id, m.contact_id, m.direction,
            m.author, m.author_user_id, m.kind, m.body, m.provider_id, m.quoted_id, m.status,
            m.failure_reason, m.idempotency_key, m.queue_stamp, m.imported, m.sent_at,
            m.created_at
        FROM messages m WHERE m.tenant_id = ",
    );
    sql.int(tenant.0);
    match scope.history {
        Some((contact, connection)) => {
            sql.push(" AND m.contact_id = ")
                .int(contact.0)
                .push(" AND m.connection_id = ")
                .int(connection.0);
            if let Some(queues) = scope.stamp_queues {
                sql.push(" AND (m.ticket_id = ")
                    .int(scope.ticket_id.0)
                    .push(" OR m.queue_stamp IS NULL");
                if !queues.is_empty() {
                    sql.push(" OR m.queue_stamp IN ")
                        .int_list(queues.iter().map(|q| q.0));
                }
                sql.push(")");
            }
        }
        None => {
            sql.push(" AND m.ticket_id = ").int(scope.ticket_id.0);
        }
    }
    if let Some((sent_at, id)) = before {
        and_before(&mut sql, "m.sent_at", "m.id", sent_at.0, id.0);
    }
    sql.push(" ORDER BY m.sent_at DESC, m.id DESC LIMIT ")
        .literal(limit.max(0));
    let rows: Vec<crate::messages::MessageRow> = read!(db, pool => {
        let mut query = sql.builder_for(pool);
        query.build_query_as().fetch_all(pool).await?
    });
    rows.into_iter()
        .map(crate::messages::MessageRow::into_model)
        .collect()
}

#[cfg(test)]
mod tests;
