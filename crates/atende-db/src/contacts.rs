//! Contacts with their channel identities, wallet owners (ordered) and tags; search and merge.

use crate::queues::{USER_IN_TENANT, dedup, ensure_ref, parse_enum, parse_json};
use crate::tags::TAG_IN_TENANT;
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::text::{contact_search_text, fold};
use atende_domain::{
    ChannelKind, Contact, ContactId, ContactIdentity, ContactIdentityId, NameSource, TagId,
    TenantId, Timestamp, UserId,
};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct NewContact {
    pub name: String,
    pub name_source: NameSource,
    /// E.164, already normalised by the caller.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub avatar_url: Option<String>,
    pub blocked: bool,
    pub is_group: bool,
    /// A JSON object.
    pub custom_fields: serde_json::Value,
    pub identities: Vec<(ChannelKind, String)>,
    /// Wallet owners in order.
    pub wallet_user_ids: Vec<UserId>,
    pub tag_ids: Vec<TagId>,
}

/// `Some` replaces the field (lists are replaced whole); `Some(None)` clears a nullable field.
#[derive(Debug, Clone, Default)]
pub struct ContactPatch {
    pub name: Option<String>,
    pub name_source: Option<NameSource>,
    pub phone: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub blocked: Option<bool>,
    pub is_group: Option<bool>,
    pub custom_fields: Option<serde_json::Value>,
    pub identities: Option<Vec<(ChannelKind, String)>>,
    pub wallet_user_ids: Option<Vec<UserId>>,
    pub tag_ids: Option<Vec<TagId>>,
}

/// A page of contacts, keyset-paged by id (ascending).
#[derive(Debug, Clone)]
pub struct ContactFilter {
    /// Case-insensitive substring of the name or email, or digits of the phone or an identity.
    pub search: Option<String>,
    pub tag_id: Option<TagId>,
    pub blocked: Option<bool>,
    /// Only contacts with an id greater than this (the last id of the previous page).
    pub after: Option<ContactId>,
    pub limit: i64,
}

impl Default for ContactFilter {
    fn default() -> Self {
        ContactFilter {
            search: None,
            tag_id: None,
            blocked: None,
            after: None,
            limit: 50,
        }
    }
}

pub(crate) const CONTACT_IN_TENANT: &str =
    "SELECT id FROM contacts WHERE tenant_id = $1 AND id = $2";

#[derive(sqlx::FromRow)]
struct ContactRow {
    id: i64,
    tenant_id: i64,
    name: String,
    name_source: String,
    phone: Option<String>,
    email: Option<String>,
    avatar_url: Option<String>,
    blocked: bool,
    is_group: bool,
    custom_fields: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct IdentityRow {
    id: i64,
    contact_id: i64,
    channel: String,
    external_id: String,
}

impl IdentityRow {
    fn into_model(self) -> DbResult<ContactIdentity> {
        Ok(ContactIdentity {
            id: ContactIdentityId(self.id),
            contact_id: ContactId(self.contact_id),
            channel: parse_enum(
                &self.channel,
                ChannelKind::parse,
                "contact_identities.channel",
            )?,
            external_id: self.external_id,
        })
    }
}

const SELECT: &str =
    "SELECT c.id, c.tenant_id, c.name, c.name_source, c.phone, c.email, c.avatar_url,
    c.blocked, c.is_group, c.custom_fields, c.created_at, c.updated_at FROM contacts c";
const INSERT: &str = "INSERT INTO contacts (tenant_id, name, name_source, phone, email, avatar_url,
        blocked, is_group, custom_fields, created_at, updated_at, search_text)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) RETURNING id";
const GET: &str = "SELECT id, tenant_id, name, name_source, phone, email, avatar_url, blocked,
        is_group, custom_fields, created_at, updated_at
    FROM contacts WHERE tenant_id = $1 AND id = $2";
const FIND_BY_IDENTITY: &str = "SELECT c.id, c.tenant_id, c.name, c.name_source, c.phone, c.email,
        c.avatar_url, c.blocked, c.is_group, c.custom_fields, c.created_at, c.updated_at
    FROM contact_identities i JOIN contacts c ON c.tenant_id = i.tenant_id AND c.id = i.contact_id
    WHERE i.tenant_id = $1 AND i.channel = $2 AND i.external_id = $3";
const UPDATE: &str = "UPDATE contacts SET name = $3, name_source = $4, phone = $5, email = $6,
        avatar_url = $7, blocked = $8, is_group = $9, custom_fields = $10, updated_at = $11,
        search_text = $12
    WHERE tenant_id = $1 AND id = $2";
const TOUCH: &str = "UPDATE contacts SET updated_at = $3 WHERE tenant_id = $1 AND id = $2";
const DELETE: &str = "DELETE FROM contacts WHERE tenant_id = $1 AND id = $2";
const INSERT_IDENTITY: &str = "INSERT INTO contact_identities (tenant_id, contact_id, channel,
        external_id, created_at)
    VALUES ($1, $2, $3, $4, $5) RETURNING id, contact_id, channel, external_id";
const IDENTITIES_OF: &str = "SELECT id, contact_id, channel, external_id FROM contact_identities
    WHERE tenant_id = $1 AND contact_id = $2 ORDER BY id";
const DELETE_IDENTITY: &str = "DELETE FROM contact_identities WHERE tenant_id = $1 AND id = $2";
const MOVE_IDENTITIES: &str =
    "UPDATE contact_identities SET contact_id = $3 WHERE tenant_id = $1 AND contact_id = $2";
const WALLET_OF: &str =
    "SELECT user_id FROM wallets WHERE tenant_id = $1 AND contact_id = $2 ORDER BY position";
const CLEAR_WALLET: &str = "DELETE FROM wallets WHERE tenant_id = $1 AND contact_id = $2";
const INSERT_WALLET: &str =
    "INSERT INTO wallets (tenant_id, contact_id, user_id, position) VALUES ($1, $2, $3, $4)";
const CLEAR_TAGS: &str = "DELETE FROM contact_tags WHERE tenant_id = $1 AND contact_id = $2";
const INSERT_TAG: &str =
    "INSERT INTO contact_tags (tenant_id, contact_id, tag_id) VALUES ($1, $2, $3)";
const MERGE_TAGS: &str = "INSERT INTO contact_tags (tenant_id, contact_id, tag_id)
    SELECT tenant_id, $3, tag_id FROM contact_tags a
    WHERE a.tenant_id = $1 AND a.contact_id = $2 AND NOT EXISTS (
        SELECT 1 FROM contact_tags k
        WHERE k.tenant_id = $1 AND k.contact_id = $3 AND k.tag_id = a.tag_id)";
// Merge: the absorbed contact's open tickets on a connection where the kept contact also has one
// are closed, so the two never break the one-open-ticket rule.
const MERGE_CLOSE_CYCLES: &str = "UPDATE ticket_cycles SET closed_at = $4, close_reason = 'merged'
    WHERE tenant_id = $1 AND closed_at IS NULL AND ticket_id IN (
        SELECT a.id FROM tickets a WHERE a.tenant_id = $1 AND a.contact_id = $2
            AND a.status <> 'closed' AND EXISTS (
                SELECT 1 FROM tickets k WHERE k.tenant_id = $1 AND k.contact_id = $3
                    AND k.connection_id = a.connection_id AND k.status <> 'closed'))";
const MERGE_CLOSE_TICKETS: &str =
    "UPDATE tickets SET status = 'closed', closed_at = $4, updated_at = $4
    WHERE tenant_id = $1 AND contact_id = $2 AND status <> 'closed' AND EXISTS (
        SELECT 1 FROM tickets k WHERE k.tenant_id = $1 AND k.contact_id = $3
            AND k.connection_id = tickets.connection_id AND k.status <> 'closed')";
const MOVE_TICKETS: &str =
    "UPDATE tickets SET contact_id = $3 WHERE tenant_id = $1 AND contact_id = $2";
const MOVE_MESSAGES: &str =
    "UPDATE messages SET contact_id = $3 WHERE tenant_id = $1 AND contact_id = $2";

/// Replaces the wallet of `$contact` (in a transaction `$tx`) with `$users`, in order.
macro_rules! replace_wallet {
    ($tx:ident, $tenant:expr, $contact:expr, $users:expr) => {{
        sqlx::query(CLEAR_WALLET)
            .bind($tenant.0)
            .bind($contact)
            .execute(&mut *$tx)
            .await?;
        for (position, user) in $users.iter().enumerate() {
            sqlx::query(INSERT_WALLET)
                .bind($tenant.0)
                .bind($contact)
                .bind(user.0)
                .bind(position as i64)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

/// Replaces the tags of `$contact` (in a transaction `$tx`) with `$tags`.
macro_rules! replace_tags {
    ($tx:ident, $tenant:expr, $contact:expr, $tags:expr) => {{
        sqlx::query(CLEAR_TAGS)
            .bind($tenant.0)
            .bind($contact)
            .execute(&mut *$tx)
            .await?;
        for tag in $tags.iter() {
            sqlx::query(INSERT_TAG)
                .bind($tenant.0)
                .bind($contact)
                .bind(tag.0)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

/// Fills identities, wallet and tags of the rows with three queries, whatever their number.
async fn hydrate(db: &Db, tenant: TenantId, rows: Vec<ContactRow>) -> DbResult<Vec<Contact>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let (identities, wallets, tags) = read!(db, pool => {
        let mut query = sqlx::QueryBuilder::new(
            "SELECT id, contact_id, channel, external_id FROM contact_identities \
             WHERE tenant_id = ",
        );
        query.push_bind(tenant.0).push(" AND contact_id IN (");
        let mut list = query.separated(", ");
        for id in &ids {
            list.push_bind(*id);
        }
        list.push_unseparated(") ORDER BY id");
        let identities: Vec<IdentityRow> = query.build_query_as().fetch_all(pool).await?;

        let mut query =
            sqlx::QueryBuilder::new("SELECT contact_id, user_id FROM wallets WHERE tenant_id = ");
        query.push_bind(tenant.0).push(" AND contact_id IN (");
        let mut list = query.separated(", ");
        for id in &ids {
            list.push_bind(*id);
        }
        list.push_unseparated(") ORDER BY contact_id, position");
        let wallets: Vec<(i64, i64)> = query.build_query_as().fetch_all(pool).await?;

        let mut query =
            sqlx::QueryBuilder::new("SELECT contact_id, tag_id FROM contact_tags \
                                     WHERE tenant_id = ");
        query.push_bind(tenant.0).push(" AND contact_id IN (");
        let mut list = query.separated(", ");
        for id in &ids {
            list.push_bind(*id);
        }
        list.push_unseparated(") ORDER BY contact_id, tag_id");
        let tags: Vec<(i64, i64)> = query.build_query_as().fetch_all(pool).await?;
        (identities, wallets, tags)
    });

    let mut identities_of: HashMap<i64, Vec<ContactIdentity>> = HashMap::new();
    for identity in identities {
        identities_of
            .entry(identity.contact_id)
            .or_default()
            .push(identity.into_model()?);
    }
    let mut wallet_of: HashMap<i64, Vec<UserId>> = HashMap::new();
    for (contact, user) in wallets {
        wallet_of.entry(contact).or_default().push(UserId(user));
    }
    let mut tags_of: HashMap<i64, Vec<TagId>> = HashMap::new();
    for (contact, tag) in tags {
        tags_of.entry(contact).or_default().push(TagId(tag));
    }
    rows.into_iter()
        .map(|row| {
            Ok(Contact {
                id: ContactId(row.id),
                tenant_id: TenantId(row.tenant_id),
                name_source: parse_enum(
                    &row.name_source,
                    NameSource::parse,
                    "contacts.name_source",
                )?,
                name: row.name,
                phone: row.phone,
                email: row.email,
                avatar_url: row.avatar_url,
                blocked: row.blocked,
                is_group: row.is_group,
                custom_fields: parse_json(&row.custom_fields)?,
                identities: identities_of.remove(&row.id).unwrap_or_default(),
                wallet_user_ids: wallet_of.remove(&row.id).unwrap_or_default(),
                tag_ids: tags_of.remove(&row.id).unwrap_or_default(),
                created_at: Timestamp(row.created_at),
                updated_at: Timestamp(row.updated_at),
            })
        })
        .collect()
}

async fn hydrate_one(db: &Db, tenant: TenantId, row: ContactRow) -> DbResult<Contact> {
    hydrate(db, tenant, vec![row])
        .await?
        .pop()
        .ok_or(DbError::NotFound)
}

/// Creates the contact with its identities, wallet and tags in one transaction. An identity
/// already used in the tenant → `Conflict`; a user or tag of another tenant →
/// `UnknownReference { field: "wallet_user_ids" | "tag_ids" }`.
pub async fn create(db: &Db, tenant: TenantId, new: &NewContact) -> DbResult<Contact> {
    let now = Timestamp::now();
    let wallet = dedup(&new.wallet_user_ids);
    let tags = dedup(&new.tag_ids);
    let custom_fields = new.custom_fields.to_string();
    let id: i64 = write!(db, pool => {
        let mut tx = pool.begin().await?;
        for user in &wallet {
            ensure_ref!(&mut *tx, USER_IN_TENANT, tenant, user.0, "wallet_user_ids");
        }
        for tag in &tags {
            ensure_ref!(&mut *tx, TAG_IN_TENANT, tenant, tag.0, "tag_ids");
        }
        let id: i64 = sqlx::query_scalar(INSERT)
            .bind(tenant.0)
            .bind(new.name.as_str())
            .bind(new.name_source.as_str())
            .bind(new.phone.as_deref())
            .bind(new.email.as_deref())
            .bind(new.avatar_url.as_deref())
            .bind(new.blocked)
            .bind(new.is_group)
            .bind(custom_fields.as_str())
            .bind(now.0)
            .bind(contact_search_text(&new.name, new.email.as_deref()))
            .fetch_one(&mut *tx)
            .await?;
        for (channel, external_id) in dedup_pairs(&new.identities) {
            sqlx::query(INSERT_IDENTITY)
                .bind(tenant.0)
                .bind(id)
                .bind(channel.as_str())
                .bind(external_id.as_str())
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
        }
        replace_wallet!(tx, tenant, id, wallet);
        replace_tags!(tx, tenant, id, tags);
        tx.commit().await?;
        id
    });
    get(db, tenant, ContactId(id)).await
}

pub async fn get(db: &Db, tenant: TenantId, id: ContactId) -> DbResult<Contact> {
    let row: Option<ContactRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    hydrate_one(db, tenant, row.ok_or(DbError::NotFound)?).await
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One page of contacts matching the filter, by ascending id.
pub async fn list(db: &Db, tenant: TenantId, filter: &ContactFilter) -> DbResult<Vec<Contact>> {
    let search = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let text_pattern = search.map(|s| format!("%{}%", like_escape(&fold(s))));
    let digits: String = search
        .map(|s| s.chars().filter(char::is_ascii_digit).collect())
        .unwrap_or_default();
    let digit_pattern = (!digits.is_empty()).then(|| format!("%{digits}%"));
    let limit = filter.limit.max(0);
    let rows: Vec<ContactRow> = read!(db, pool => {
        let mut query = sqlx::QueryBuilder::new(SELECT);
        query.push(" WHERE c.tenant_id = ").push_bind(tenant.0);
        if let Some(after) = filter.after {
            query.push(" AND c.id > ").push_bind(after.0);
        }
        if let Some(blocked) = filter.blocked {
            query.push(" AND c.blocked = ").push_bind(blocked);
        }
        if let Some(tag) = filter.tag_id {
            query
                .push(" AND EXISTS (SELECT 1 FROM contact_tags t WHERE t.tenant_id = c.tenant_id")
                .push(" AND t.contact_id = c.id AND t.tag_id = ")
                .push_bind(tag.0)
                .push(")");
        }
        if let Some(pattern) = &text_pattern {
            query
                .push(" AND (c.search_text LIKE ")
                .push_bind(pattern.as_str())
                .push(" ESCAPE '\\'");
            if let Some(digits) = &digit_pattern {
                query
                    .push(" OR c.phone LIKE ")
                    .push_bind(digits.as_str())
                    .push(" OR EXISTS (SELECT 1 FROM contact_identities i")
                    .push(" WHERE i.tenant_id = c.tenant_id")
                    .push(" AND i.contact_id = c.id AND i.external_id LIKE ")
                    .push_bind(digits.as_str())
                    .push(")");
            }
            query.push(")");
        }
        query.push(" ORDER BY c.id LIMIT ").push_bind(limit);
        query.build_query_as().fetch_all(pool).await?
    });
    hydrate(db, tenant, rows).await
}

/// The contact's wallet owners, in wallet order (one query; `get` also reads identities and tags).
pub async fn wallet_of(db: &Db, tenant: TenantId, contact: ContactId) -> DbResult<Vec<UserId>> {
    let ids: Vec<i64> = read!(db, pool => {
        sqlx::query_scalar(WALLET_OF).bind(tenant.0).bind(contact.0).fetch_all(pool).await?
    });
    Ok(ids.into_iter().map(UserId).collect())
}

/// `wallet_of` for many contacts in one read: each contact's wallet owners in order (contacts
/// without any are left out).
pub async fn wallets_of(
    db: &Db,
    tenant: TenantId,
    contacts: &[ContactId],
) -> DbResult<HashMap<ContactId, Vec<UserId>>> {
    if contacts.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, i64)> = read!(db, pool => {
        let mut query =
            sqlx::QueryBuilder::new("SELECT contact_id, user_id FROM wallets WHERE tenant_id = ");
        query.push_bind(tenant.0).push(" AND contact_id IN (");
        let mut list = query.separated(", ");
        for contact in contacts {
            list.push_bind(contact.0);
        }
        list.push_unseparated(") ORDER BY contact_id, position");
        query.build_query_as().fetch_all(pool).await?
    });
    let mut wallets: HashMap<ContactId, Vec<UserId>> = HashMap::new();
    for (contact, user) in rows {
        wallets
            .entry(ContactId(contact))
            .or_default()
            .push(UserId(user));
    }
    Ok(wallets)
}

/// The contact that owns this identity (channel + external id), if any.
pub async fn find_by_identity(
    db: &Db,
    tenant: TenantId,
    channel: ChannelKind,
    external_id: &str,
) -> DbResult<Option<Contact>> {
    let row: Option<ContactRow> = read!(db, pool => {
        sqlx::query_as(FIND_BY_IDENTITY)
            .bind(tenant.0)
            .bind(channel.as_str())
            .bind(external_id)
            .fetch_optional(pool)
            .await?
    });
    match row {
        Some(row) => Ok(Some(hydrate_one(db, tenant, row).await?)),
        None => Ok(None),
    }
}

/// Applies the patch in one transaction; see `create` for the errors.
pub async fn update(
    db: &Db,
    tenant: TenantId,
    id: ContactId,
    patch: &ContactPatch,
) -> DbResult<Contact> {
    let now = Timestamp::now();
    let wallet = patch.wallet_user_ids.as_deref().map(dedup);
    let tags = patch.tag_ids.as_deref().map(dedup);
    let custom_fields = patch.custom_fields.as_ref().map(|v| v.to_string());
    write!(db, pool => {
        let mut tx = pool.begin().await?;
        let current: Option<ContactRow> =
            sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(&mut *tx).await?;
        let current = current.ok_or(DbError::NotFound)?;
        for user in wallet.iter().flatten() {
            ensure_ref!(&mut *tx, USER_IN_TENANT, tenant, user.0, "wallet_user_ids");
        }
        for tag in tags.iter().flatten() {
            ensure_ref!(&mut *tx, TAG_IN_TENANT, tenant, tag.0, "tag_ids");
        }
        let name_source = patch.name_source.map(NameSource::as_str);
        sqlx::query(UPDATE)
            .bind(tenant.0)
            .bind(id.0)
            .bind(patch.name.as_deref().unwrap_or(&current.name))
            .bind(name_source.unwrap_or(&current.name_source))
            .bind(patch.phone.as_ref().map_or(current.phone.as_deref(), Option::as_deref))
            .bind(patch.email.as_ref().map_or(current.email.as_deref(), Option::as_deref))
            .bind(patch.avatar_url.as_ref().map_or(current.avatar_url.as_deref(), Option::as_deref))
            .bind(patch.blocked.unwrap_or(current.blocked))
            .bind(patch.is_group.unwrap_or(current.is_group))
            .bind(custom_fields.as_deref().unwrap_or(&current.custom_fields))
            .bind(now.0)
            .bind(contact_search_text(
                patch.name.as_deref().unwrap_or(&current.name),
                patch.email.as_ref().map_or(current.email.as_deref(), Option::as_deref),
            ))
            .execute(&mut *tx)
            .await?;
        if let Some(wanted) = &patch.identities {
            let existing: Vec<IdentityRow> =
                sqlx::query_as(IDENTITIES_OF).bind(tenant.0).bind(id.0).fetch_all(&mut *tx).await?;
            for identity in &existing {
                let keep = wanted
                    .iter()
                    .any(|(channel, external)| {
                        channel.as_str() == identity.channel && *external == identity.external_id
                    });
                if !keep {
                    sqlx::query(DELETE_IDENTITY)
                        .bind(tenant.0)
                        .bind(identity.id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for (channel, external_id) in dedup_pairs(wanted) {
                let present = existing
                    .iter()
                    .any(|i| i.channel == channel.as_str() && i.external_id == *external_id);
                if !present {
                    sqlx::query(INSERT_IDENTITY)
                        .bind(tenant.0)
                        .bind(id.0)
                        .bind(channel.as_str())
                        .bind(external_id.as_str())
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        if let Some(wallet) = &wallet {
            replace_wallet!(tx, tenant, id.0, wallet);
        }
        if let Some(tags) = &tags {
            replace_tags!(tx, tenant, id.0, tags);
        }
        tx.commit().await?;
    });
    get(db, tenant, id).await
}

fn dedup_pairs(pairs: &[(ChannelKind, String)]) -> Vec<&(ChannelKind, String)> {
    let mut out: Vec<&(ChannelKind, String)> = Vec::with_capacity(pairs.len());
    for pair in pairs {
        if !out.contains(&pair) {
            out.push(pair);
        }
    }
    out
}

/// Deletes the contact with its identities, wallet, tags, tickets and messages.
pub async fn delete(db: &Db, tenant: TenantId, id: ContactId) -> DbResult<()> {
    let affected = write!(db, pool => {
        sqlx::query(DELETE).bind(tenant.0).bind(id.0).execute(pool).await?.rows_affected()
    });
    if affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}

/// Adds an identity to a contact. Unknown contact → `NotFound`; identity already used in the
/// tenant (by this or another contact) → `Conflict`.
pub async fn add_identity(
    db: &Db,
    tenant: TenantId,
    contact_id: ContactId,
    channel: ChannelKind,
    external_id: &str,
) -> DbResult<ContactIdentity> {
    let now = Timestamp::now();
    let row: IdentityRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let found: Option<i64> = sqlx::query_scalar(CONTACT_IN_TENANT)
            .bind(tenant.0)
            .bind(contact_id.0)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(DbError::NotFound);
        }
        let row: IdentityRow = sqlx::query_as(INSERT_IDENTITY)
            .bind(tenant.0)
            .bind(contact_id.0)
            .bind(channel.as_str())
            .bind(external_id)
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(TOUCH).bind(tenant.0).bind(contact_id.0).bind(now.0).execute(&mut *tx).await?;
        tx.commit().await?;
        row
    });
    row.into_model()
}

pub async fn remove_identity(db: &Db, tenant: TenantId, id: ContactIdentityId) -> DbResult<()> {
    let affected = write!(db, pool => {
        sqlx::query(DELETE_IDENTITY).bind(tenant.0).bind(id.0).execute(pool).await?.rows_affected()
    });
    if affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}

/// Replaces the wallet owners; the order given is the wallet order. Unknown contact →
/// `NotFound`; a user of another tenant → `UnknownReference { field: "wallet_user_ids" }`.
pub async fn set_wallet(
    db: &Db,
    tenant: TenantId,
    contact_id: ContactId,
    user_ids: &[UserId],
) -> DbResult<()> {
    let users = dedup(user_ids);
    let now = Timestamp::now();
    write!(db, pool => {
        let mut tx = pool.begin().await?;
        let touched = sqlx::query(TOUCH)
            .bind(tenant.0)
            .bind(contact_id.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if touched == 0 {
            return Err(DbError::NotFound);
        }
        for user in &users {
            ensure_ref!(&mut *tx, USER_IN_TENANT, tenant, user.0, "wallet_user_ids");
        }
        replace_wallet!(tx, tenant, contact_id.0, users);
        tx.commit().await?;
    });
    Ok(())
}

/// Replaces the contact's tags. Unknown contact → `NotFound`; a tag of another tenant →
/// `UnknownReference { field: "tag_ids" }`.
pub async fn set_tags(
    db: &Db,
    tenant: TenantId,
    contact_id: ContactId,
    tag_ids: &[TagId],
) -> DbResult<()> {
    let tags = dedup(tag_ids);
    let now = Timestamp::now();
    write!(db, pool => {
        let mut tx = pool.begin().await?;
        let touched = sqlx::query(TOUCH)
            .bind(tenant.0)
            .bind(contact_id.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if touched == 0 {
            return Err(DbError::NotFound);
        }
        for tag in &tags {
            ensure_ref!(&mut *tx, TAG_IN_TENANT, tenant, tag.0, "tag_ids");
        }
        replace_tags!(tx, tenant, contact_id.0, tags);
        tx.commit().await?;
    });
    Ok(())
}

/// Merges `absorb` into `keep` in one transaction and deletes `absorb`: identities, tickets and
/// messages move; wallet owners and tags are united (keep's wallet order first); empty phone,
/// email and avatar and missing custom fields are taken from `absorb`. Where both have an open
/// ticket on the same connection, the absorbed one is closed (reason `merged`) so the
/// one-open-ticket rule holds. Either contact unknown → `NotFound`; `keep == absorb` → `Conflict`.
pub async fn merge(
    db: &Db,
    tenant: TenantId,
    keep: ContactId,
    absorb: ContactId,
) -> DbResult<Contact> {
    if keep == absorb {
        return Err(DbError::Conflict {
            constraint: "a contact cannot be merged into itself".to_owned(),
        });
    }
    let now = Timestamp::now();
    write!(db, pool => {
        let mut tx = pool.begin().await?;
        let kept: Option<ContactRow> =
            sqlx::query_as(GET).bind(tenant.0).bind(keep.0).fetch_optional(&mut *tx).await?;
        let absorbed: Option<ContactRow> =
            sqlx::query_as(GET).bind(tenant.0).bind(absorb.0).fetch_optional(&mut *tx).await?;
        let (kept, absorbed) = match (kept, absorbed) {
            (Some(kept), Some(absorbed)) => (kept, absorbed),
            _ => return Err(DbError::NotFound),
        };

        sqlx::query(MOVE_IDENTITIES)
            .bind(tenant.0)
            .bind(absorb.0)
            .bind(keep.0)
            .execute(&mut *tx)
            .await?;

        let mut wallet: Vec<i64> =
            sqlx::query_scalar(WALLET_OF).bind(tenant.0).bind(keep.0).fetch_all(&mut *tx).await?;
        let other: Vec<i64> =
            sqlx::query_scalar(WALLET_OF).bind(tenant.0).bind(absorb.0).fetch_all(&mut *tx).await?;
        for user in other {
            if !wallet.contains(&user) {
                wallet.push(user);
            }
        }
        let wallet: Vec<UserId> = wallet.into_iter().map(UserId).collect();
        replace_wallet!(tx, tenant, keep.0, wallet);

        sqlx::query(MERGE_TAGS).bind(tenant.0).bind(absorb.0).bind(keep.0).execute(&mut *tx).await?;

        sqlx::query(MERGE_CLOSE_CYCLES)
            .bind(tenant.0)
            .bind(absorb.0)
            .bind(keep.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(MERGE_CLOSE_TICKETS)
            .bind(tenant.0)
            .bind(absorb.0)
            .bind(keep.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(MOVE_TICKETS)
            .bind(tenant.0)
            .bind(absorb.0)
            .bind(keep.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(MOVE_MESSAGES)
            .bind(tenant.0)
            .bind(absorb.0)
            .bind(keep.0)
            .execute(&mut *tx)
            .await?;

        let mut fields = parse_json(&kept.custom_fields)?;
        if let (Some(fields), serde_json::Value::Object(extra)) =
            (fields.as_object_mut(), parse_json(&absorbed.custom_fields)?)
        {
            for (key, value) in extra {
                fields.entry(key).or_insert(value);
            }
        }
        let fields = fields.to_string();
        sqlx::query(UPDATE)
            .bind(tenant.0)
            .bind(keep.0)
            .bind(kept.name.as_str())
            .bind(kept.name_source.as_str())
            .bind(kept.phone.as_deref().or(absorbed.phone.as_deref()))
            .bind(kept.email.as_deref().or(absorbed.email.as_deref()))
            .bind(kept.avatar_url.as_deref().or(absorbed.avatar_url.as_deref()))
            .bind(kept.blocked)
            .bind(kept.is_group)
            .bind(fields.as_str())
            .bind(now.0)
            .bind(contact_search_text(&kept.name, kept.email.as_deref().or(absorbed.email.as_deref())))
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE).bind(tenant.0).bind(absorb.0).execute(&mut *tx).await?;
        tx.commit().await?;
    });
    get(db, tenant, keep).await
}

const STALE_SEARCH_TEXT: &str = "SELECT id, name, email FROM contacts
    WHERE search_text = '' AND name <> '' AND id > $1 ORDER BY id LIMIT 500";
const SET_SEARCH_TEXT: &str = "UPDATE contacts SET search_text = $2 WHERE id = $1";

/// Fills the search text of contacts written without one (the inbound pipeline of earlier
/// versions did not set it), so ticket search by contact name finds them. Platform-wide startup
/// repair: a no-op once every contact has its text; answers how many rows it fixed.
pub async fn platform_repair_search_text(db: &Db) -> DbResult<u64> {
    let mut fixed = 0u64;
    // Keyset walk: a name that folds to nothing cannot make the loop see it again.
    let mut after = 0i64;
    loop {
        let rows: Vec<(i64, String, Option<String>)> = write!(db, pool => {
            sqlx::query_as(STALE_SEARCH_TEXT).bind(after).fetch_all(pool).await?
        });
        let Some((last, _, _)) = rows.last() else {
            return Ok(fixed);
        };
        after = *last;
        write!(db, pool => {
            let mut tx = pool.begin().await?;
            for (id, name, email) in &rows {
                sqlx::query(SET_SEARCH_TEXT)
                    .bind(id)
                    .bind(contact_search_text(name, email.as_deref()))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        fixed += rows.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::like_escape;

    #[test]
    fn like_escape_neutralises_wildcards() {
        assert_eq!(like_escape(r"50%_a\b"), r"50\%\_a\\b");
    }
}
