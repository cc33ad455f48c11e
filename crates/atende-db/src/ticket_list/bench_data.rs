//! Bulk inserts of fully specified contacts, tickets and messages, for the ticket-list benchmark
//! (a million tickets) and for tests that need tickets in exact states (unread counts, bot
//! sessions, times) without running the inbound pipeline. Multi-row `INSERT`s, many per
//! transaction; nothing here is used by the running product.

use super::sql::Sql;
use crate::{Backend, Db, DbResult, write};
use atende_domain::text::contact_search_text;
use atende_domain::{
    ConnectionId, ContactId, FlowId, MessageAuthor, MessageDirection, MessageKind, MessageStatus,
    QueueId, TenantId, TicketId, TicketStatus, Timestamp, UserId,
};

/// Rows per statement: well under SQLite's 32,766 bound values for the widest row.
const ROWS_PER_STATEMENT: usize = 500;

#[derive(Debug, Clone)]
pub struct BulkContact {
    pub name: String,
    pub phone: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct BulkTicket {
    pub contact_id: ContactId,
    pub connection_id: ConnectionId,
    pub status: TicketStatus,
    pub owner_id: Option<UserId>,
    pub queue_id: Option<QueueId>,
    pub is_group: bool,
    /// Unique in the tenant.
    pub protocol: String,
    pub bot_flow_id: Option<FlowId>,
    pub integration_session: Option<String>,
    pub wallet_overflowed: bool,
    pub unread: i64,
    pub last_message: String,
    pub last_message_at: Option<Timestamp>,
    pub last_inbound_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct BulkMessage {
    pub ticket_id: TicketId,
    pub connection_id: ConnectionId,
    pub contact_id: ContactId,
    pub direction: MessageDirection,
    pub author: MessageAuthor,
    pub author_user_id: Option<UserId>,
    pub body: String,
    pub queue_stamp: Option<QueueId>,
    pub sent_at: Timestamp,
}

fn flag(value: bool) -> &'static str {
    if value { "TRUE" } else { "FALSE" }
}

/// Runs the statements in one transaction.
async fn run_all(db: &Db, statements: Vec<Sql>) -> DbResult<Vec<i64>> {
    let ids = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let mut ids = Vec::new();
        for statement in &statements {
            let mut query = statement.builder_for(pool);
            let rows: Vec<(i64,)> = query.build_query_as().fetch_all(&mut *tx).await?;
            ids.extend(rows.into_iter().map(|(id,)| id));
        }
        tx.commit().await?;
        ids
    });
    Ok(ids)
}

/// Inserts contacts (no identities, wallet or tags); returns their ids in input order.
pub async fn insert_contacts(
    db: &Db,
    tenant: TenantId,
    rows: &[BulkContact],
) -> DbResult<Vec<ContactId>> {
    let mut statements = Vec::new();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(
            "INSERT INTO contacts (tenant_id, name, name_source, phone, created_at, updated_at, \
             search_text) VALUES ",
        );
        for (n, row) in chunk.iter().enumerate() {
            sql.push(if n == 0 { "(" } else { ", (" })
                .int(tenant.0)
                .push(", ")
                .text(row.name.clone())
                .push(", 'import', ");
            match &row.phone {
                Some(phone) => sql.text(phone.clone()),
                None => sql.push("NULL"),
            };
            sql.push(", ")
                .int(row.created_at.0)
                .push(", ")
                .int(row.created_at.0)
                .push(", ")
                .text(contact_search_text(&row.name, None))
                .push(")");
        }
        sql.push(" RETURNING id");
        statements.push(sql);
    }
    let mut ids = run_all(db, statements).await?;
    // Ids grow in insertion order on both stores.
    ids.sort_unstable();
    Ok(ids.into_iter().map(ContactId).collect())
}

fn opt_int(sql: &mut Sql, value: Option<i64>) {
    match value {
        Some(value) => sql.int(value),
        None => sql.push("NULL"),
    };
}

/// Inserts tickets as given (no cycles); returns their ids in input order.
pub async fn insert_tickets(
    db: &Db,
    tenant: TenantId,
    rows: &[BulkTicket],
) -> DbResult<Vec<TicketId>> {
    let mut statements = Vec::new();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(
            "INSERT INTO tickets (tenant_id, contact_id, connection_id, status, owner_id, queue_id, \
             is_group, protocol, bot_flow_id, integration_session, wallet_overflowed, unread, \
             last_message, last_message_at, last_inbound_at, closed_at, created_at, updated_at) \
             VALUES ",
        );
        for (n, row) in chunk.iter().enumerate() {
            sql.push(if n == 0 { "(" } else { ", (" })
                .int(tenant.0)
                .push(", ")
                .int(row.contact_id.0)
                .push(", ")
                .int(row.connection_id.0)
                .push(", ")
                .text(row.status.as_str())
                .push(", ");
            opt_int(&mut sql, row.owner_id.map(|u| u.0));
            sql.push(", ");
            opt_int(&mut sql, row.queue_id.map(|q| q.0));
            sql.push(", ")
                .push(flag(row.is_group))
                .push(", ")
                .text(row.protocol.clone())
                .push(", ");
            opt_int(&mut sql, row.bot_flow_id.map(|f| f.0));
            sql.push(", ");
            match &row.integration_session {
                Some(session) => sql.text(session.clone()),
                None => sql.push("NULL"),
            };
            sql.push(", ")
                .push(flag(row.wallet_overflowed))
                .push(", ")
                .int(row.unread)
                .push(", ")
                .text(row.last_message.clone())
                .push(", ");
            opt_int(&mut sql, row.last_message_at.map(|t| t.0));
            sql.push(", ");
            opt_int(&mut sql, row.last_inbound_at.map(|t| t.0));
            sql.push(", ");
            opt_int(&mut sql, row.closed_at.map(|t| t.0));
            sql.push(", ")
                .int(row.created_at.0)
                .push(", ")
                .int(row.updated_at.0)
                .push(")");
        }
        sql.push(" RETURNING id");
        statements.push(sql);
    }
    let mut ids = run_all(db, statements).await?;
    ids.sort_unstable();
    Ok(ids.into_iter().map(TicketId).collect())
}

/// Inserts text messages (status `delivered` inbound, `sent` outbound).
pub async fn insert_messages(db: &Db, tenant: TenantId, rows: &[BulkMessage]) -> DbResult<()> {
    let mut statements = Vec::new();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(
            "INSERT INTO messages (tenant_id, ticket_id, connection_id, contact_id, direction, \
             author, author_user_id, kind, body, status, queue_stamp, sent_at, created_at, \
             updated_at) VALUES ",
        );
        for (n, row) in chunk.iter().enumerate() {
            let status = match row.direction {
                MessageDirection::In => MessageStatus::Delivered,
                MessageDirection::Out => MessageStatus::Sent,
            };
            sql.push(if n == 0 { "(" } else { ", (" })
                .int(tenant.0)
                .push(", ")
                .int(row.ticket_id.0)
                .push(", ")
                .int(row.connection_id.0)
                .push(", ")
                .int(row.contact_id.0)
                .push(", ")
                .text(row.direction.as_str())
                .push(", ")
                .text(row.author.as_str())
                .push(", ");
            opt_int(&mut sql, row.author_user_id.map(|u| u.0));
            sql.push(", ")
                .text(MessageKind::Text.as_str())
                .push(", ")
                .text(row.body.clone())
                .push(", ")
                .text(status.as_str())
                .push(", ");
            opt_int(&mut sql, row.queue_stamp.map(|q| q.0));
            sql.push(", ")
                .int(row.sent_at.0)
                .push(", ")
                .int(row.sent_at.0)
                .push(", ")
                .int(row.sent_at.0)
                .push(")");
        }
        sql.push(" RETURNING id");
        statements.push(sql);
    }
    run_all(db, statements).await?;
    Ok(())
}

/// Refreshes the planner's statistics after a bulk load (PostgreSQL `VACUUM ANALYZE`, which also
/// lets index-only scans skip the heap; SQLite `ANALYZE`, unless `sqlite_too` is false: the
/// product never runs it on SQLite, so the benchmark measures plans without statistics).
pub async fn refresh_statistics(db: &Db, sqlite_too: bool) -> DbResult<()> {
    match db.backend() {
        Backend::Postgres => {
            write!(db, pool => {
                sqlx::raw_sql("VACUUM ANALYZE contacts, tickets, messages, wallets, contact_tags")
                    .execute(pool)
                    .await?;
            });
        }
        Backend::Sqlite if sqlite_too => {
            write!(db, pool => { sqlx::raw_sql("ANALYZE").execute(pool).await?; });
        }
        Backend::Sqlite => {}
    }
    Ok(())
}
