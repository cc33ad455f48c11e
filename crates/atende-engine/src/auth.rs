//! Who is calling: password login, opaque tokens (panel sessions and API tokens, stored hashed),
//! logout and password change. Roles are checked by the callers through `Principal`.

use crate::{Engine, EngineError, EngineResult};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use atende_db::tokens::{AuthToken, NewToken};
use atende_domain::{Profile, TenantId, Timestamp, TokenKind, User, UserId, validation};
use sha2::{Digest, Sha256};

/// API tokens last until revoked; they can be given an expiry by the caller later.
const API_TOKEN_TTL_MS: Option<i64> = None;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub token_id: atende_domain::SessionId,
    pub token_hash: String,
    pub kind: TokenKind,
}

impl Principal {
    /// The tenant this caller acts in; superadmins have none and get 403 on tenant routes.
    pub fn tenant(&self) -> EngineResult<TenantId> {
        self.user
            .tenant_id
            .ok_or_else(|| EngineError::Forbidden("platform operators have no tenant data".into()))
    }

    pub fn profile(&self) -> EngineResult<Profile> {
        self.user
            .profile
            .ok_or_else(|| EngineError::Forbidden("platform operators have no tenant data".into()))
    }

    pub fn user_id(&self) -> UserId {
        self.user.id
    }

    pub fn require_admin(&self) -> EngineResult<TenantId> {
        let tenant = self.tenant()?;
        match self.profile()? {
            Profile::Admin => Ok(tenant),
            _ => Err(EngineError::Forbidden(
                "only administrators may do this".into(),
            )),
        }
    }

    /// Admins and supervisors.
    pub fn require_manager(&self) -> EngineResult<TenantId> {
        let tenant = self.tenant()?;
        match self.profile()? {
            Profile::Admin | Profile::Supervisor => Ok(tenant),
            Profile::User => Err(EngineError::Forbidden(
                "only administrators and supervisors may do this".into(),
            )),
        }
    }

    pub fn require_superadmin(&self) -> EngineResult<()> {
        if self.user.is_superadmin {
            Ok(())
        } else {
            Err(EngineError::Forbidden(
                "only platform operators may do this".into(),
            ))
        }
    }
}

/// What a successful login hands back: the plain token is shown once and never stored.
#[derive(Debug, Clone)]
pub struct LoginGrant {
    pub token: String,
    pub user: User,
}

/// Where a request comes from, for rate limiting and the audit log.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: Option<String>,
}

pub fn hash_password(password: &str) -> EngineResult<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| {
            EngineError::Validation(validation::ValidationError::field(
                "password",
                e.to_string(),
            ))
        })
}

pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new opaque token (shown to the client) and its hash (stored).
pub fn new_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = format!("atd_{}", hex::encode(bytes));
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A hash to compare against when the e-mail is unknown, so both paths take the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default())
}

impl Engine {
    /// Checks e-mail and password (tenant-less: e-mails are unique on the platform) and issues a
    /// token of `kind`. Repeated failures per e-mail or per IP are refused with `RateLimited`.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        kind: TokenKind,
        client: &ClientInfo,
    ) -> EngineResult<LoginGrant> {
        let email = email.trim().to_lowercase();
        self.login_limiter()
            .check(&email, &client.ip)
            .map_err(|retry_after_secs| EngineError::RateLimited { retry_after_secs })?;
        let found = atende_db::users::platform_find_for_login(self.db(), &email).await?;
        let verified = match &found {
            Some((_, hash)) => verify_password(password, hash),
            None => {
                verify_password(password, dummy_hash());
                false
            }
        };
        let user = match (found, verified) {
            (Some((user, _)), true) => user,
            _ => {
                self.login_limiter().record_failure(&email, &client.ip);
                tracing::info!(%email, ip = %client.ip, "login failed");
                return Err(EngineError::BadCredentials);
            }
        };
        if let Some(tenant) = user.tenant_id {
            let tenant = atende_db::tenants::platform_get(self.db(), tenant).await?;
            if tenant.suspended {
                return Err(EngineError::Forbidden(
                    "this company's account is suspended".into(),
                ));
            }
        }
        self.login_limiter().record_success(&email);
        let token = self.issue_token(&user, kind, None, client).await?;
        Ok(LoginGrant { token, user })
    }

    /// Issues a token for `user` without a password check (bootstrap, tests, the panel after login).
    pub async fn issue_token(
        &self,
        user: &User,
        kind: TokenKind,
        name: Option<String>,
        client: &ClientInfo,
    ) -> EngineResult<String> {
        let (token, hash) = new_token();
        let now = Timestamp::now();
        let expires_at = match kind {
            TokenKind::Session => Some(now.plus_millis(self.config().session_ttl_ms)),
            TokenKind::Api => API_TOKEN_TTL_MS.map(|ttl| now.plus_millis(ttl)),
        };
        atende_db::tokens::platform_create(
            self.db(),
            &NewToken {
                token_hash: hash,
                user_id: user.id,
                tenant_id: user.tenant_id,
                kind,
                name,
                ip: Some(client.ip.clone()),
                user_agent: client.user_agent.clone(),
                expires_at,
            },
        )
        .await?;
        Ok(token)
    }

    /// Resolves a presented token to its user; expired, revoked and suspended → `Unauthenticated`.
    pub async fn authenticate(&self, token: &str) -> EngineResult<Principal> {
        if !token.starts_with("atd_") || token.len() > 200 {
            return Err(EngineError::Unauthenticated);
        }
        let hash = token_hash(token);
        let now = Timestamp::now();
        // One round trip: token, user, queues and the tenant's suspension together.
        let Some((found, user)) =
            atende_db::tokens::platform_session(self.db(), &hash, now).await?
        else {
            return Err(EngineError::Unauthenticated);
        };
        self.touch_token(&found, now).await?;
        Ok(Principal {
            user,
            token_id: found.id,
            token_hash: hash,
            kind: found.kind,
        })
    }

    /// Records use at most once a minute per token, so reads do not turn into writes.
    async fn touch_token(&self, token: &AuthToken, now: Timestamp) -> EngineResult<()> {
        if now.millis() - token.last_used_at.millis() > 60_000 {
            atende_db::tokens::platform_touch(self.db(), token.id, now).await?;
        }
        Ok(())
    }

    pub async fn logout(&self, principal: &Principal) -> EngineResult<()> {
        atende_db::tokens::platform_delete_by_hash(self.db(), &principal.token_hash).await?;
        Ok(())
    }

    /// Changes the caller's password after checking the current one, and ends every other
    /// session and token of that user.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new_password: &str,
    ) -> EngineResult<u64> {
        validation::password("new_password", new_password)
            .map_err(validation::ValidationError::from)?;
        let Some((_, hash)) =
            atende_db::users::platform_find_for_login(self.db(), &principal.user.email).await?
        else {
            return Err(EngineError::Unauthenticated);
        };
        if !verify_password(current, &hash) {
            return Err(EngineError::Validation(validation::ValidationError::field(
                "current_password",
                "does not match your current password",
            )));
        }
        let new_hash = hash_password(new_password)?;
        atende_db::users::set_password(
            self.db(),
            principal.user.tenant_id,
            principal.user.id,
            &new_hash,
        )
        .await?;
        let ended = atende_db::tokens::platform_delete_for_user_except(
            self.db(),
            principal.user.id,
            Some(&principal.token_hash),
        )
        .await?;
        Ok(ended)
    }

    /// Sets a user's password as an administrator (ends all of that user's sessions).
    pub async fn reset_password(
        &self,
        tenant: TenantId,
        user: UserId,
        new_password: &str,
    ) -> EngineResult<()> {
        validation::password("password", new_password)
            .map_err(validation::ValidationError::from)?;
        let hash = hash_password(new_password)?;
        atende_db::users::set_password(self.db(), Some(tenant), user, &hash).await?;
        atende_db::tokens::platform_delete_for_user_except(self.db(), user, None).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_text() {
        let hash = hash_password("correct horse").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, hash_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), hash_a);
        assert!(!hash_a.contains(&a));
    }
}
