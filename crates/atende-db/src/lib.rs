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

// Core (people, auth, settings): tenants, users, tokens, meta, settings, audit, jobs.
pub mod audit;
pub mod jobs;
pub mod meta;
pub mod presence;
pub mod settings;
pub mod tenants;
pub mod tokens;
pub mod users;

// Business data: queues, contacts, connections, catalogues, tickets, messages, inbound events.
pub mod connections;
pub mod contacts;
pub mod dashboard;
pub mod demands;
pub mod flows;
pub mod inbound_events;
pub mod ingest;
pub mod lifecycle;
pub mod maintenance;
pub mod messages;
pub mod outbox;
pub mod queues;
pub mod quick_replies;
pub mod tags;
pub mod templates;
pub mod ticket_list;
pub mod tickets;

pub use error::DbError;

/// The ids of a comma-separated list built by the store (`group_concat` / `string_agg`); `None`
/// (no rows) is an empty list.
pub(crate) fn parse_id_list(list: Option<&str>, column: &str) -> DbResult<Vec<i64>> {
    list.unwrap_or_default()
        .split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<i64>()
                .map_err(|_| DbError::Corrupt(format!("{column}: id '{part}'")))
        })
        .collect()
}
pub use pool::{Backend, Db};

/// Result of every repository call.
pub type DbResult<T> = Result<T, DbError>;
