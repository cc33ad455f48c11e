//! Storage of atende: one `Db` over SQLite (embedded default) and PostgreSQL (production),
//! the migrations of both dialects and the tenant-first repositories.
//!
//! Every repository function takes `&Db` and then `TenantId` (functions that cross tenants say so
//! in their name, e.g. `platform_*`). Each query is written once with `$n` placeholders, which both
//! drivers accept, and run through the `read!` / `write!` macros; dialect branches exist only where
//! the SQL truly differs. This crate holds no business rule: it stores and fetches what the domain
//! decided.

mod error;
mod migrate;
mod pool;
#[doc(hidden)]
pub mod testing;

pub use error::DbError;
pub use pool::{Backend, Db};

/// Result of every repository call.
pub type DbResult<T> = Result<T, DbError>;
