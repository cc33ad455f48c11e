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

/// What a sync changed, counted by template.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Templates the provider no longer lists, deleted here.
    pub removed: usize,
}

const EXISTING: &str =
    "SELECT id, tenant_id, connection_id, name, language, category, status, components,
        updated_at
    FROM templates WHERE tenant_id = $1 AND connection_id = $2";

/// Makes the connection's templates what the provider listed, in one transaction: new ones are
/// inserted, changed ones updated, identical ones left alone (their `updated_at` keeps saying when
/// they last changed, so a repeated sync writes nothing), and the ones the provider no longer
/// lists are deleted. Deleting is safe: a sent template message keeps its own call and text, and
/// nothing else points at a template row. Every entry of `listed` must name `connection_id`; a
/// (name, language) listed twice keeps its last entry. A connection of another tenant →
/// `UnknownReference { field: "connection_id" }`.
pub async fn sync_connection(
    db: &Db,
    tenant: TenantId,
    connection_id: ConnectionId,
    listed: &[NewTemplate],
) -> DbResult<SyncCounts> {
    let now = Timestamp::now();
    let mut wanted: std::collections::BTreeMap<(&str, &str), &NewTemplate> =
        std::collections::BTreeMap::new();
    for template in listed.iter().filter(|t| t.connection_id == connection_id) {
        wanted.insert(
            (template.name.as_str(), template.language.as_str()),
            template,
        );
    }
    let counts = write!(db, pool => {
        let mut tx = pool.begin().await?;
        ensure_ref!(&mut *tx, CONNECTION_IN_TENANT, tenant, connection_id.0, "connection_id");
        let existing: Vec<TemplateRow> = sqlx::query_as(EXISTING)
            .bind(tenant.0)
            .bind(connection_id.0)
            .fetch_all(&mut *tx)
            .await?;
        let mut counts = SyncCounts::default();
        // (name, language) of stored rows the provider still lists → whether they are unchanged.
        let mut stored = std::collections::BTreeMap::new();
        for row in &existing {
            let key = (row.name.as_str(), row.language.as_str());
            match wanted.get(&key) {
                None => {
                    sqlx::query(DELETE).bind(tenant.0).bind(row.id).execute(&mut *tx).await?;
                    counts.removed += 1;
                }
                Some(new) => {
                    let same = row.category == new.category
                        && row.status == new.status
                        && serde_json::from_str::<serde_json::Value>(&row.components)
                            .is_ok_and(|components| components == new.components);
                    stored.insert(key, same);
                }
            }
        }
        for (key, new) in &wanted {
            let known = stored.get(key).copied();
            if known == Some(true) {
                counts.unchanged += 1;
                continue;
            }
            let components = new.components.to_string();
            let _: TemplateRow = sqlx::query_as(UPSERT)
                .bind(tenant.0)
                .bind(connection_id.0)
                .bind(new.name.as_str())
                .bind(new.language.as_str())
                .bind(new.category.as_str())
                .bind(new.status.as_str())
                .bind(components.as_str())
                .bind(now.0)
                .fetch_one(&mut *tx)
                .await?;
            if known.is_some() {
                counts.updated += 1;
            } else {
                counts.inserted += 1;
            }
        }
        tx.commit().await?;
        counts
    });
    Ok(counts)
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
