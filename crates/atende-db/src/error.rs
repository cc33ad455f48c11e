use thiserror::Error;

#[derive(Debug, Error)]
pub enum DbError {
    /// The row does not exist, or exists in another tenant (callers cannot tell the two apart).
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; `constraint` names the index when the driver says.
    #[error("already exists ({constraint})")]
    Conflict { constraint: String },
    /// A referenced row does not exist (foreign key).
    #[error("a referenced row does not exist ({0})")]
    ForeignKey(String),
    /// An id given in the input (named by `field`) does not exist in this tenant.
    #[error("{field}: {id} does not exist")]
    UnknownReference { field: &'static str, id: i64 },
    #[error(
        "unsupported database URL '{0}': use sqlite://PATH (e.g. sqlite://data/atende.db?mode=rwc) or postgres://USER@HOST:PORT/DB"
    )]
    UnsupportedUrl(String),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => DbError::NotFound,
            sqlx::Error::Database(db) => {
                let constraint = db.constraint().unwrap_or_default().to_owned();
                if db.is_unique_violation() {
                    let constraint = if constraint.is_empty() {
                        db.message().to_owned()
                    } else {
                        constraint
                    };
                    DbError::Conflict { constraint }
                } else if db.is_foreign_key_violation() {
                    let constraint = if constraint.is_empty() {
                        db.message().to_owned()
                    } else {
                        constraint
                    };
                    DbError::ForeignKey(constraint)
                } else {
                    DbError::Sqlx(error)
                }
            }
            _ => DbError::Sqlx(error),
        }
    }
}

impl From<serde_json::Error> for DbError {
    fn from(error: serde_json::Error) -> Self {
        DbError::Corrupt(error.to_string())
    }
}

impl DbError {
    /// A write handed to a writer task that stopped before it answered: its fate is unknown.
    pub fn writer_stopped() -> DbError {
        DbError::Sqlx(sqlx::Error::WorkerCrashed)
    }
}
