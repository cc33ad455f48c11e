//! WhatsApp Business message templates, synced from the provider per connection, and what the
//! 24 h window rule (`atende_domain::delivery::free_form_refusal`) reads about a ticket's chat.
//! Template messages themselves are queued like any reply (`outbox::queue_reply` with a
//! `template_call`), which also records the cycle that sent one.

use crate::connections::CONNECTION_IN_TENANT;
use crate::queues::{ensure_ref, parse_json};
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{ConnectionId, MessageId, Template, TemplateId, TenantId, TicketId, Timestamp};

/// One template as the provider reports it; (connection, name, language) identifies it.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub connection_id: ConnectionId,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub components: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct TemplateRow {
    id: i64,
    tenant_id: i64,
    connection_id: i64,
    name: String,
    language: String,
    category: String,
    status: String,
    components: String,
    updated_at: i64,
}

impl TemplateRow {
    fn into_model(self) -> DbResult<Template> {
        Ok(Template {
            id: TemplateId(self.id),
            tenant_id: TenantId(self.tenant_id),
            connection_id: ConnectionId(self.connection_id),
            name: self.name,
            language: self.language,
            category: self.category,
            status: self.status,
            components: parse_json(&self.components)?,
            updated_at: Timestamp(self.updated_at),
        })
    }
}

const UPSERT: &str = "INSERT INTO templates (tenant_id, connection_id, name, language, category,
        status, components, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
    ON CONFLICT (tenant_id, connection_id, name, language) DO UPDATE SET
        category = excluded.category, status = excluded.status,
        components = excluded.components, updated_at = excluded.updated_at
    RETURNING id, tenant_id, connection_id, name, language, category, status, components,
        updated_at";
const GET: &str =
    "SELECT id, tenant_id, connection_id, name, language, category, status, components,
        updated_at
    FROM templates WHERE tenant_id = $1 AND id = $2";
const LIST: &str =
    "SELECT id, tenant_id, connection_id, name, language, category, status, components,
        updated_at
    FROM templates WHERE tenant_id = $1 AND connection_id = $2 ORDER BY name, language, id";
const FIND: &str =
    "SELECT id, tenant_id, connection_id, name, language, category, status, components,
        updated_at
    FROM templates WHERE tenant_id = $1 AND connection_id = $2 AND name = $3 AND language = $4";
const DELETE: &str = "DELETE FROM templates WHERE tenant_id = $1 AND id = $2";

/// Inserts the template or updates the one with the same (connection, name, language).
/// A connection of another tenant → `UnknownReference { field: "connection_id" }`.
pub async fn upsert(db: &Db, tenant: TenantId, new: &NewTemplate) -> DbResult<Template> {
    let now = Timestamp::now();
    let components = new.components.to_string();
    let row: TemplateRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        ensure_ref!(&mut *tx, CONNECTION_IN_TENANT, tenant, new.connection_id.0, "connection_id");
        let row: TemplateRow = sqlx::query_as(UPSERT)
            .bind(tenant.0)
            .bind(new.connection_id.0)
            .bind(new.name.as_str())
            .bind(new.language.as_str())
            .bind(new.category.as_str())
            .bind(new.status.as_str())
            .bind(components.as_str())
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row
    });
    row.into_model()
}

pub async fn get(db: &Db, tenant: TenantId, id: TemplateId) -> DbResult<Template> {
    let row: Option<TemplateRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.ok_or(DbError::NotFound)?.into_model()
}

/// The template with this name and language on the connection, if synced.
pub async fn find(
    db: &Db,
    tenant: TenantId,
    connection_id: ConnectionId,
    name: &str,
    language: &str,
) -> DbResult<Option<Template>> {
    let row: Option<TemplateRow> = read!(db, pool => {
        sqlx::query_as(FIND)
            .bind(tenant.0)
            .bind(connection_id.0)
            .bind(name)
            .bind(language)
            .fetch_optional(pool)
            .await?
    });
    row.map(TemplateRow::into_model).transpose()
}

/// The templates of one connection, by name and language (none for another tenant's connection).
pub async fn list(
    db: &Db,
    tenant: TenantId,
    connection_id: ConnectionId,
) -> DbResult<Vec<Template>> {
    let rows: Vec<TemplateRow> = read!(db, pool => {
        sqlx::query_as(LIST).bind(tenant.0).bind(connection_id.0).fetch_all(pool).await?
    });
    rows.into_iter().map(TemplateRow::into_model).collect()
}

/// Removes a template the provider no longer has.
pub async fn delete(db: &Db, tenant: TenantId, id: TemplateId) -> DbResult<()> {
    let affected = write!(db, pool => {
        sqlx::query(DELETE).bind(tenant.0).bind(id.0).execute(pool).await?.rows_affected()
    });
    if affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The 24 h window
// ---------------------------------------------------------------------------------------------

/// What the store knows about a ticket's chat for the window rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatWindow {
    /// The provider's time of the contact's last message on the ticket's connection, over all of
    /// the contact's tickets there (a ticket an agent opened has none of its own).
    pub last_inbound_at: Option<Timestamp>,
    /// A template was queued in the ticket's current cycle.
    pub template_in_cycle: bool,
}

// The last inbound message walks `messages_contact` backwards from the newest.
const WINDOW: &str = "SELECT t.current_cycle_id, t.template_cycle_id,
        (SELECT m.sent_at FROM messages m
            WHERE m.tenant_id = t.tenant_id AND m.contact_id = t.contact_id
                AND m.connection_id = t.connection_id AND m.direction = 'in'
            ORDER BY m.sent_at DESC, m.id DESC LIMIT 1)
    FROM tickets t WHERE t.tenant_id = $1 AND t.id = $2";
const CALL: &str = "SELECT template_call FROM messages WHERE tenant_id = $1 AND id = $2";

/// The window facts of a ticket's chat. Unknown ticket → `NotFound`.
pub async fn chat_window(db: &Db, tenant: TenantId, ticket: TicketId) -> DbResult<ChatWindow> {
    let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = read!(db, pool => {
        sqlx::query_as(WINDOW).bind(tenant.0).bind(ticket.0).fetch_optional(pool).await?
    });
    let (current, template, last) = row.ok_or(DbError::NotFound)?;
    Ok(ChatWindow {
        last_inbound_at: last.map(Timestamp),
        template_in_cycle: current.is_some() && template == current,
    })
}

/// The template call stored with a message of kind `template` (JSON), `None` for any other.
/// Unknown message → `NotFound`.
pub async fn call_of(db: &Db, tenant: TenantId, message: MessageId) -> DbResult<Option<String>> {
    let call: Option<Option<String>> = read!(db, pool => {
        sqlx::query_scalar(CALL).bind(tenant.0).bind(message.0).fetch_optional(pool).await?
    });
    call.ok_or(DbError::NotFound)
}
