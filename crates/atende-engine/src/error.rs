use atende_db::DbError;
use atende_domain::ValidationError;
use thiserror::Error;

/// Everything a service can refuse or fail with; the web edge maps each to one HTTP status.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("{0}")]
    Validation(#[from] ValidationError),
    #[error("not found")]
    NotFound,
    #[error("{field}: {id} does not exist")]
    UnknownReference { field: &'static str, id: i64 },
    #[error("{0}")]
    Conflict(String),
    /// The command does not apply in the current state (SPEC §3: 409 with the reason).
    #[error("{0}")]
    InvalidState(String),
    /// A free-form message outside the WhatsApp Business 24 h window (SPEC §7: 422).
    #[error("{0}")]
    WindowClosed(String),
    #[error("authentication required")]
    Unauthenticated,
    #[error("wrong e-mail or password")]
    BadCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("too many attempts; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("secret key: {0}")]
    SecretKey(String),
    #[error("stored secret cannot be decrypted: {0}")]
    Decrypt(String),
    #[error(transparent)]
    Db(DbError),
}

impl From<DbError> for EngineError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::NotFound => EngineError::NotFound,
            DbError::UnknownReference { field, id } => EngineError::UnknownReference { field, id },
            DbError::Conflict { constraint } => {
                EngineError::Conflict(conflict_message(&constraint))
            }
            other => EngineError::Db(other),
        }
    }
}

/// Turns an index name into words a user understands.
fn conflict_message(constraint: &str) -> String {
    let lower = constraint.to_lowercase();
    let what = if lower.contains("email") {
        "a user with this e-mail already exists"
    } else if lower.contains("slug") {
        "a tenant with this slug already exists"
    } else if lower.contains("shortcut") {
        "a quick reply with this shortcut already exists"
    } else if lower.contains("identit") || lower.contains("external_id") {
        "this identity already belongs to a contact"
    } else if lower.contains("name") {
        "an item with this name already exists"
    } else {
        return format!("already exists ({constraint})");
    };
    what.to_owned()
}

pub type EngineResult<T> = Result<T, EngineError>;
