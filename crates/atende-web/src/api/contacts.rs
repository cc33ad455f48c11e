//! Contacts: name, phone, e-mail, custom fields, channel identities, wallet owners and tags; list
//! with search and a cursor, merge of duplicates.
//!
//! Any tenant user may read and edit a contact's details; blocking, the wallet, deletion and merging
//! change who gets the contact's tickets, so they are for managers (admin, supervisor).

use crate::api::{NoContent, double_option};
use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::state::AppState;
use atende_domain::phone::normalize_e164;
use atende_domain::{
    ChannelKind, Contact, ContactId, NameSource, TagId, UserId, ValidationError, validation,
};
use atende_engine::EngineError;
use atende_engine::auth::Principal;
use atende_engine::db::contacts::{self, ContactFilter, ContactPatch, NewContact};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::fmt::Display;
use std::str::FromStr;
use utoipa::{IntoParams, ToSchema};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/contacts", get(list).post(create))
        .route(
            "/api/v1/contacts/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/api/v1/contacts/{id}/merge", post(merge))
}

const MAX_NAME: usize = 200;
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;
const MAX_CUSTOM_FIELDS: usize = 50;
const MAX_CUSTOM_KEY: usize = 100;
const MAX_CUSTOM_TEXT: usize = 4096;
const MAX_EXTERNAL_ID: usize = 200;
const MAX_SEARCH: usize = 200;

/// One way to reach the contact on a channel.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityInput {
    channel: ChannelKind,
    /// Phone (normalised to E.164 on WhatsApp kinds), WhatsApp JID or LID, Instagram IGSID,
    /// Telegram chat id, web-chat visitor id.
    external_id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    name: String,
    /// Normalised to E.164 (a Brazilian national number gets +55).
    phone: Option<String>,
    email: Option<String>,
    /// Managers only.
    #[serde(default)]
    blocked: bool,
    /// Object of up to 50 keys whose values are strings, numbers or booleans.
    #[schema(value_type = Option<Object>)]
    custom_fields: Option<Value>,
    #[serde(default)]
    identities: Vec<IdentityInput>,
    /// Wallet owners in order (managers only).
    #[serde(default)]
    wallet_user_ids: Vec<UserId>,
    #[serde(default)]
    tag_ids: Vec<TagId>,
}

/// Absent fields stay as they are; `null` clears `phone`, `email` and `custom_fields`; lists
/// replace the stored ones.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactUpdate {
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    /// Managers only.
    blocked: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    custom_fields: Option<Option<Value>>,
    identities: Option<Vec<IdentityInput>>,
    /// Managers only.
    wallet_user_ids: Option<Vec<UserId>>,
    tag_ids: Option<Vec<TagId>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInput {
    /// The duplicate whose identities, wallet, tags and tickets move to the contact in the path;
    /// it is deleted afterwards.
    absorb_id: ContactId,
}

/// Query of `GET /api/v1/contacts`; empty values mean "not given".
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactQuery {
    /// Part of the name, phone, e-mail or an identity.
    #[serde(default, deserialize_with = "empty_as_none")]
    search: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    tag_id: Option<i64>,
    #[serde(default, deserialize_with = "empty_as_none")]
    blocked: Option<bool>,
    /// The `next_cursor` of the previous page (`cursor=` is accepted too, as on tickets).
    #[serde(default, alias = "cursor", deserialize_with = "empty_as_none")]
    after: Option<i64>,
    /// Page size, 1 to 200 (default 50); larger values are capped.
    #[serde(default, deserialize_with = "empty_as_none")]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ContactPage {
    pub contacts: Vec<Contact>,
    /// Pass as `after` for the next page; `null` when this page is the last.
    pub next_cursor: Option<ContactId>,
}

/// A query value that may be empty (`?tag_id=`), parsed with `FromStr`.
fn empty_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let raw: Option<String> = Option::deserialize(deserializer)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("'{text}' is not accepted: {e}"))),
    }
}

fn page_limit(requested: Option<i64>) -> i64 {
    requested.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

/// A phone given by a person, in E.164; blank means none.
fn phone(field: &str, raw: &str) -> Result<Option<String>, ValidationError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    normalize_e164(raw)
        .map(Some)
        .map_err(|e| ValidationError::field(field, e.to_string()))
}

fn email(field: &str, raw: &str) -> Result<Option<String>, ValidationError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(validation::email(field, raw)?))
}

/// Custom fields are a flat object of at most 50 keys with string, number or boolean values.
pub fn custom_fields(value: &Value) -> Result<Value, ValidationError> {
    const FIELD: &str = "custom_fields";
    let Some(object) = value.as_object() else {
        return Err(ValidationError::field(
            FIELD,
            "must be a JSON object like {\"cpf\": \"123\"}",
        ));
    };
    if object.len() > MAX_CUSTOM_FIELDS {
        return Err(ValidationError::field(
            FIELD,
            format!(
                "has {} keys; at most {MAX_CUSTOM_FIELDS} are allowed",
                object.len()
            ),
        ));
    }
    for (key, item) in object {
        if key.trim().is_empty() || key.chars().count() > MAX_CUSTOM_KEY {
            return Err(ValidationError::field(
                FIELD,
                format!("keys must have 1 to {MAX_CUSTOM_KEY} characters"),
            ));
        }
        let field = format!("{FIELD}.{key}");
        match item {
            Value::String(text) if text.chars().count() > MAX_CUSTOM_TEXT => {
                return Err(ValidationError::field(
                    field,
                    format!("must be at most {MAX_CUSTOM_TEXT} characters"),
                ));
            }
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {}
            _ => {
                return Err(ValidationError::field(
                    field,
                    "must be a string, a number or a boolean",
                ));
            }
        }
    }
    Ok(value.clone())
}

/// Identities with their external ids in canonical form, duplicates removed (first kept).
///
/// On WhatsApp kinds an id without `@` is a phone number and is normalised to E.164; JIDs and LIDs
/// (`…@s.whatsapp.net`, `…@lid`, `…@g.us`) are kept as given.
fn identities(list: &[IdentityInput]) -> Result<Vec<(ChannelKind, String)>, ValidationError> {
    let mut out: Vec<(ChannelKind, String)> = Vec::with_capacity(list.len());
    for (index, identity) in list.iter().enumerate() {
        let field = format!("identities[{index}].external_id");
        let raw = identity.external_id.trim();
        let whatsapp = matches!(
            identity.channel,
            ChannelKind::WhatsappCloud | ChannelKind::Evolution
        );
        let external_id = if whatsapp && !raw.is_empty() && !raw.contains('@') {
            normalize_e164(raw).map_err(|e| ValidationError::field(&field, e.to_string()))?
        } else {
            validation::required_text(&field, raw, MAX_EXTERNAL_ID)?
        };
        let pair = (identity.channel, external_id);
        if !out.contains(&pair) {
            out.push(pair);
        }
    }
    Ok(out)
}

/// Ids in their given order, each once.
fn distinct<T: PartialEq + Copy>(ids: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    out
}

fn new_contact(input: &ContactInput) -> Result<NewContact, ValidationError> {
    Ok(NewContact {
        name: validation::required_text("name", &input.name, MAX_NAME)?,
        name_source: NameSource::Manual,
        phone: input
            .phone
            .as_deref()
            .map(|p| phone("phone", p))
            .transpose()?
            .flatten(),
        email: input
            .email
            .as_deref()
            .map(|e| email("email", e))
            .transpose()?
            .flatten(),
        avatar_url: None,
        blocked: input.blocked,
        is_group: false,
        custom_fields: match &input.custom_fields {
            None => Value::Object(Default::default()),
            Some(value) => custom_fields(value)?,
        },
        identities: identities(&input.identities)?,
        wallet_user_ids: distinct(&input.wallet_user_ids),
        tag_ids: distinct(&input.tag_ids),
    })
}

fn contact_patch(input: &ContactUpdate) -> Result<ContactPatch, ValidationError> {
    let name = input
        .name
        .as_deref()
        .map(|n| validation::required_text("name", n, MAX_NAME))
        .transpose()?;
    Ok(ContactPatch {
        name_source: name.as_ref().map(|_| NameSource::Manual),
        name,
        phone: match &input.phone {
            None => None,
            Some(None) => Some(None),
            Some(Some(p)) => Some(phone("phone", p)?),
        },
        email: match &input.email {
            None => None,
            Some(None) => Some(None),
            Some(Some(e)) => Some(email("email", e)?),
        },
        blocked: input.blocked,
        custom_fields: match &input.custom_fields {
            None => None,
            Some(None) => Some(Value::Object(Default::default())),
            Some(Some(value)) => Some(custom_fields(value)?),
        },
        identities: input.identities.as_deref().map(identities).transpose()?,
        wallet_user_ids: input.wallet_user_ids.as_deref().map(distinct),
        tag_ids: input.tag_ids.as_deref().map(distinct),
        ..ContactPatch::default()
    })
}

/// Admins and supervisors (the profiles that manage tenant data).
pub(crate) fn is_manager(principal: &Principal) -> ApiResult<bool> {
    Ok(principal.profile()?.can_manage_tenant_data())
}

fn managers_only(what: &str) -> EngineError {
    EngineError::Forbidden(format!("only administrators and supervisors may {what}"))
}

#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", params(ContactQuery),
    responses((status = 200, body = ContactPage), (status = 400), (status = 401)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(query): Query<ContactQuery>,
) -> ApiResult<axum::Json<ContactPage>> {
    let tenant = principal.tenant()?;
    let limit = page_limit(query.limit);
    let search = query
        .search
        .map(|s| s.chars().take(MAX_SEARCH).collect::<String>());
    let filter = ContactFilter {
        search,
        tag_id: query.tag_id.map(TagId),
        blocked: query.blocked,
        after: query.after.map(ContactId),
        limit,
    };
    let contacts = contacts::list(state.engine.db(), tenant, &filter).await?;
    let full = i64::try_from(contacts.len()).unwrap_or(i64::MAX) >= limit;
    let next_cursor = if full {
        contacts.last().map(|c| c.id)
    } else {
        None
    };
    Ok(axum::Json(ContactPage {
        contacts,
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = i64, Path)),
    responses((status = 200, body = Contact), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Contact>> {
    let tenant = principal.tenant()?;
    Ok(axum::Json(
        contacts::get(state.engine.db(), tenant, ContactId(id)).await?,
    ))
}

/// Any user may create a contact; `blocked: true` and a wallet need a manager.
#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", request_body = ContactInput,
    responses((status = 201, body = Contact), (status = 403), (status = 404, description = "a referenced user or tag does not exist"),
        (status = 409, description = "an identity already belongs to another contact"), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(input): Json<ContactInput>,
) -> ApiResult<(StatusCode, axum::Json<Contact>)> {
    let tenant = principal.tenant()?;
    let new = new_contact(&input).map_err(EngineError::from)?;
    if new.blocked && !is_manager(&principal)? {
        return Err(managers_only("block contacts").into());
    }
    if !new.wallet_user_ids.is_empty() && !is_manager(&principal)? {
        return Err(managers_only("set a contact's wallet").into());
    }
    let contact = contacts::create(state.engine.db(), tenant, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(contact)))
}

/// Sending `blocked` or `wallet_user_ids` unchanged is fine for any user; changing them needs a
/// manager.
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = i64, Path)),
    request_body = ContactUpdate,
    responses((status = 200, body = Contact), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<ContactUpdate>,
) -> ApiResult<axum::Json<Contact>> {
    let tenant = principal.tenant()?;
    let id = ContactId(id);
    let db = state.engine.db();
    let patch = contact_patch(&input).map_err(EngineError::from)?;
    let existing = contacts::get(db, tenant, id).await?;
    let changes_block = patch.blocked.is_some_and(|b| b != existing.blocked);
    if changes_block && !is_manager(&principal)? {
        return Err(managers_only("block or unblock contacts").into());
    }
    let changes_wallet = patch
        .wallet_user_ids
        .as_ref()
        .is_some_and(|w| *w != existing.wallet_user_ids);
    if changes_wallet && !is_manager(&principal)? {
        return Err(managers_only("change a contact's wallet").into());
    }
    Ok(axum::Json(contacts::update(db, tenant, id, &patch).await?))
}

/// Managers only; the contact's tickets and messages go with it.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<NoContent> {
    let tenant = principal.tenant()?;
    if !is_manager(&principal)? {
        return Err(managers_only("delete contacts").into());
    }
    contacts::delete(state.engine.db(), tenant, ContactId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Managers only. Moves everything of `absorb_id` into the contact in the path and deletes it.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/merge", tag = "contacts", params(("id" = i64, Path)),
    request_body = MergeInput,
    responses((status = 200, body = Contact), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn merge(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<MergeInput>,
) -> ApiResult<axum::Json<Contact>> {
    let tenant = principal.tenant()?;
    if !is_manager(&principal)? {
        return Err(managers_only("merge contacts").into());
    }
    let keep = ContactId(id);
    // Existence first, so another tenant's id is a plain 404 whatever the body says.
    contacts::get(state.engine.db(), tenant, keep).await?;
    if input.absorb_id == keep {
        return Err(EngineError::from(ValidationError::field(
            "absorb_id",
            "must be another contact than the one it is merged into",
        ))
        .into());
    }
    let merged = contacts::merge(state.engine.db(), tenant, keep, input.absorb_id).await?;
    Ok(axum::Json(merged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(result: Result<impl std::fmt::Debug, ValidationError>) -> String {
        match result {
            Ok(value) => panic!("expected a validation error, got {value:?}"),
            Err(error) => error.0.first().map(|f| f.field.clone()).unwrap_or_default(),
        }
    }

    #[test]
    fn custom_fields_accept_a_flat_object_of_scalars() {
        let value = json!({"cpf": "123", "age": 40, "vip": true});
        assert_eq!(custom_fields(&value).ok(), Some(value));
        assert!(custom_fields(&json!({})).is_ok());
    }

    #[test]
    fn custom_fields_must_be_an_object() {
        assert_eq!(field_of(custom_fields(&json!([1, 2]))), "custom_fields");
        assert_eq!(field_of(custom_fields(&json!("text"))), "custom_fields");
        assert_eq!(field_of(custom_fields(&Value::Null)), "custom_fields");
    }

    #[test]
    fn custom_field_values_must_be_scalars() {
        assert_eq!(
            field_of(custom_fields(&json!({"address": {"city": "SP"}}))),
            "custom_fields.address"
        );
        assert_eq!(
            field_of(custom_fields(&json!({"list": [1]}))),
            "custom_fields.list"
        );
        assert_eq!(
            field_of(custom_fields(&json!({"gone": null}))),
            "custom_fields.gone"
        );
        assert_eq!(field_of(custom_fields(&json!({" ": "x"}))), "custom_fields");
    }

    #[test]
    fn custom_fields_allow_at_most_fifty_keys() {
        let fifty: serde_json::Map<String, Value> =
            (0..50).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(custom_fields(&Value::Object(fifty.clone())).is_ok());
        let mut fifty_one = fifty;
        fifty_one.insert("one_more".into(), json!(1));
        assert_eq!(
            field_of(custom_fields(&Value::Object(fifty_one))),
            "custom_fields"
        );
    }

    #[test]
    fn phones_are_normalised_and_blank_means_none() {
        assert_eq!(
            phone("phone", "(11) 98765-4321").ok().flatten().as_deref(),
            Some("+5511987654321")
        );
        assert_eq!(phone("phone", "  ").ok(), Some(None));
        assert_eq!(field_of(phone("phone", "abc")), "phone");
    }

    #[test]
    fn whatsapp_phone_identities_are_normalised_and_jids_kept() {
        let input = vec![
            IdentityInput {
                channel: ChannelKind::WhatsappCloud,
                external_id: "11 98765-4321".into(),
            },
            IdentityInput {
                channel: ChannelKind::Evolution,
                external_id: "5511987654321@s.whatsapp.net".into(),
            },
            IdentityInput {
                channel: ChannelKind::Telegram,
                external_id: " 12345 ".into(),
            },
            IdentityInput {
                channel: ChannelKind::WhatsappCloud,
                external_id: "+55 11 98765 4321".into(),
            },
        ];
        let out = identities(&input).ok();
        assert_eq!(
            out,
            Some(vec![
                (ChannelKind::WhatsappCloud, "+5511987654321".to_owned()),
                (
                    ChannelKind::Evolution,
                    "5511987654321@s.whatsapp.net".to_owned()
                ),
                (ChannelKind::Telegram, "12345".to_owned()),
            ])
        );
    }

    #[test]
    fn bad_identities_name_their_position() {
        let input = vec![
            IdentityInput {
                channel: ChannelKind::Telegram,
                external_id: "1".into(),
            },
            IdentityInput {
                channel: ChannelKind::WhatsappCloud,
                external_id: "not a phone".into(),
            },
        ];
        assert_eq!(field_of(identities(&input)), "identities[1].external_id");
        let blank = vec![IdentityInput {
            channel: ChannelKind::Instagram,
            external_id: " ".into(),
        }];
        assert_eq!(field_of(identities(&blank)), "identities[0].external_id");
    }

    #[test]
    fn wallet_keeps_order_and_drops_repeats() {
        assert_eq!(
            distinct(&[UserId(3), UserId(1), UserId(3), UserId(2)]),
            vec![UserId(3), UserId(1), UserId(2)]
        );
    }

    #[test]
    fn page_limit_defaults_to_fifty_and_is_capped() {
        assert_eq!(page_limit(None), 50);
        assert_eq!(page_limit(Some(10)), 10);
        assert_eq!(page_limit(Some(1000)), 200);
        assert_eq!(page_limit(Some(0)), 1);
    }
}
