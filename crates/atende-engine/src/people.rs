//! Tenants and users as the API, the CLI and first-run bootstrap create them: validated, with
//! hashed passwords and queue memberships, in one place.

use crate::auth::hash_password;
use crate::{Engine, EngineError, EngineResult};
use atende_db::users::{NewUser, UserPatch};
use atende_domain::{
    Profile, QueueId, Tenant, TenantId, User, UserId, ValidationError, validation,
};

/// A user to create, as typed by an admin or an operator.
#[derive(Debug, Clone)]
pub struct UserDraft {
    pub email: String,
    pub name: String,
    pub password: String,
    pub profile: Profile,
    pub queue_ids: Vec<QueueId>,
    pub business_hours: Option<serde_json::Value>,
    pub timezone: Option<String>,
    pub locale: Option<String>,
}

/// Accepted interface languages.
pub const LOCALES: &[&str] = &["pt-BR", "en"];

pub fn locale(field: &str, value: &str) -> Result<String, ValidationError> {
    LOCALES
        .iter()
        .find(|l| l.eq_ignore_ascii_case(value.trim()))
        .map(|l| (*l).to_owned())
        .ok_or_else(|| {
            ValidationError::field(field, format!("must be one of: {}", LOCALES.join(", ")))
        })
}

pub fn timezone(field: &str, value: &str) -> Result<String, ValidationError> {
    atende_domain::hours::parse_timezone(value.trim()).map_err(|mut e| {
        e.field = field.to_owned();
        ValidationError::from(e)
    })?;
    Ok(value.trim().to_owned())
}

/// Validates a weekly schedule given as JSON, returning it in canonical form.
pub fn schedule(
    field: &str,
    value: &serde_json::Value,
) -> Result<serde_json::Value, ValidationError> {
    let parsed = atende_domain::hours::WeeklySchedule::from_json(value, field)?;
    Ok(parsed.to_json())
}

impl Engine {
    /// Creates a user in `tenant` with their queues (queues of other tenants → `UnknownReference`).
    pub async fn create_user(&self, tenant: TenantId, draft: UserDraft) -> EngineResult<User> {
        let email = validation::email("email", &draft.email).map_err(ValidationError::from)?;
        let name =
            validation::required_text("name", &draft.name, 120).map_err(ValidationError::from)?;
        validation::password("password", &draft.password).map_err(ValidationError::from)?;
        let business_hours = draft
            .business_hours
            .as_ref()
            .filter(|v| !v.is_null())
            .map(|v| schedule("business_hours", v))
            .transpose()?;
        let timezone = draft
            .timezone
            .as_deref()
            .map(|tz| timezone("timezone", tz))
            .transpose()?;
        let locale = locale("locale", draft.locale.as_deref().unwrap_or("pt-BR"))?;
        self.ensure_queues(tenant, &draft.queue_ids).await?;
        let password_hash = hash_password(&draft.password)?;
        let user = atende_db::users::create(
            self.db(),
            tenant,
            &NewUser {
                email,
                name,
                password_hash,
                profile: draft.profile,
                business_hours,
                timezone,
                locale,
            },
        )
        .await?;
        if !draft.queue_ids.is_empty() {
            atende_db::queues::set_user_queues(self.db(), tenant, user.id, &draft.queue_ids)
                .await?;
        }
        Ok(atende_db::users::get(self.db(), tenant, user.id).await?)
    }

    pub async fn update_user(
        &self,
        tenant: TenantId,
        id: UserId,
        patch: UserPatch,
        queue_ids: Option<Vec<QueueId>>,
    ) -> EngineResult<User> {
        // Before the update, so an unknown queue leaves the user as it was.
        if let Some(queue_ids) = &queue_ids {
            self.ensure_queues(tenant, queue_ids).await?;
        }
        let user = atende_db::users::update(self.db(), tenant, id, &patch).await?;
        if let Some(queue_ids) = queue_ids {
            atende_db::queues::set_user_queues(self.db(), tenant, user.id, &queue_ids).await?;
        }
        Ok(atende_db::users::get(self.db(), tenant, id).await?)
    }

    /// Every queue exists in `tenant` (else `UnknownReference` naming `queue_ids`).
    async fn ensure_queues(&self, tenant: TenantId, queue_ids: &[QueueId]) -> EngineResult<()> {
        for queue in queue_ids {
            match atende_db::queues::get(self.db(), tenant, *queue).await {
                Ok(_) => {}
                Err(atende_db::DbError::NotFound) => {
                    return Err(EngineError::UnknownReference {
                        field: "queue_ids",
                        id: queue.0,
                    });
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    }

    /// Creates a tenant and its first admin (platform API and CLI).
    pub async fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        admin_email: &str,
        admin_password: &str,
        admin_name: Option<&str>,
    ) -> EngineResult<(Tenant, User)> {
        let slug = tenant_slug(slug)?;
        let name = validation::required_text("name", name, 120).map_err(ValidationError::from)?;
        validation::email("admin_email", admin_email).map_err(ValidationError::from)?;
        validation::password("admin_password", admin_password).map_err(ValidationError::from)?;
        if atende_db::users::platform_find_for_login(self.db(), &admin_email.trim().to_lowercase())
            .await?
            .is_some()
        {
            return Err(EngineError::Conflict(
                "a user with this e-mail already exists".into(),
            ));
        }
        let tenant = atende_db::tenants::platform_create(self.db(), &slug, &name).await?;
        let admin = self
            .create_user(
                tenant.id,
                UserDraft {
                    email: admin_email.to_owned(),
                    name: admin_name.unwrap_or("Admin").to_owned(),
                    password: admin_password.to_owned(),
                    profile: Profile::Admin,
                    queue_ids: Vec::new(),
                    business_hours: None,
                    timezone: None,
                    locale: None,
                },
            )
            .await?;
        Ok((tenant, admin))
    }

    pub async fn create_superadmin(&self, email: &str, password: &str) -> EngineResult<User> {
        let email = validation::email("email", email).map_err(ValidationError::from)?;
        validation::password("password", password).map_err(ValidationError::from)?;
        let hash = hash_password(password)?;
        Ok(atende_db::users::platform_create_superadmin(
            self.db(),
            &email,
            "Platform operator",
            &hash,
        )
        .await?)
    }
}

/// Lower-case letters, digits and dashes, 2–40 characters.
pub fn tenant_slug(value: &str) -> Result<String, ValidationError> {
    let slug = value.trim().to_lowercase();
    let ok = (2..=40).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(slug)
    } else {
        Err(ValidationError::field(
            "slug",
            "use 2 to 40 lower-case letters, digits and dashes",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_checked() {
        assert_eq!(tenant_slug(" Acme-2 ").ok().as_deref(), Some("acme-2"));
        assert!(tenant_slug("a").is_err());
        assert!(tenant_slug("acme corp").is_err());
        assert!(tenant_slug("-acme").is_err());
    }

    #[test]
    fn locales_are_canonical() {
        assert_eq!(locale("l", "PT-br").ok().as_deref(), Some("pt-BR"));
        assert!(locale("l", "fr").is_err());
    }
}
