//! The command line (SPEC §13): `serve` (default), `migrate`, `tenant create`, `user create`,
//! `superadmin create`. Every command uses the same configuration and `DATABASE_URL`.

use crate::{Config, open_engine, open_store};
use anyhow::{Context, bail};
use atende_domain::Profile;
use atende_engine::people::UserDraft;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "atende",
    version,
    about = "Omnichannel customer service server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        action: TenantAction,
    },
    /// Manage users of a tenant.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage platform operators.
    Superadmin {
        #[command(subcommand)]
        action: SuperadminAction,
    },
    /// Run a benchmark scenario (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        scenario: BenchScenario,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchScenario {
    /// Inbound messages through the web-chat endpoint (HTTP), the pipeline alone, and the raw
    /// store, in one run.
    Ingest {
        #[arg(long, default_value_t = 50_000)]
        messages: usize,
        #[arg(long, default_value_t = 5_000)]
        contacts: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Outbound sending on SQLite: the sender draining a full outbox with `fast_send` and a
    /// zero-latency channel, next to the raw store; then the API's reply latency at a fixed rate.
    Outbound {
        #[arg(long, default_value_t = 50_000)]
        messages: usize,
        #[arg(long, default_value_t = 500)]
        chats: usize,
        #[arg(long, default_value_t = 10_000)]
        requests: usize,
        /// Replies per second over HTTP.
        #[arg(long, default_value_t = 1_000)]
        rate: u32,
    },
    /// Cold start to ready on an empty SQLite database, and idle memory.
    Startup {
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Live fan-out: message stored → WebSocket frame received by every connected agent
    /// (needs `ulimit -n 65536` for thousands of agents).
    Live {
        #[arg(long, default_value_t = 2000)]
        agents: usize,
        #[arg(long, default_value_t = 200)]
        messages: usize,
        /// Messages per second.
        #[arg(long, default_value_t = 20)]
        rate: u32,
    },
    /// Ticket list at scale: an agent's page of 40 and tab counters over HTTP, with the raw-store
    /// baseline (builds the data set first; `--tickets 20000` is the smoke size).
    TicketList {
        #[arg(long, default_value_t = 1_000_000)]
        tickets: usize,
        /// Default: a tenth of the tickets.
        #[arg(long)]
        contacts: Option<usize>,
        /// Default: three tenths of the tickets.
        #[arg(long)]
        messages: Option<usize>,
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// An empty database; default: a temporary SQLite file.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// The attendance page at scale: server time of `/` for a logged-in agent and the page's
    /// HTML + JS + CSS weight, on the ticket-list data set (`--tickets 20000` is the smoke size).
    AttendancePage {
        #[arg(long, default_value_t = 1_000_000)]
        tickets: usize,
        #[arg(long, default_value_t = 1000)]
        requests: usize,
        /// An empty database; default: a temporary SQLite file.
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantAction {
    /// Create a tenant with its first admin.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long, env = "ATENDE_NEW_ADMIN_PASSWORD")]
        admin_password: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user in a tenant.
    Create {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "ATENDE_NEW_USER_PASSWORD")]
        password: String,
        /// admin, supervisor or user.
        #[arg(long, default_value = "user")]
        profile: String,
        #[arg(long)]
        name: Option<String>,
        /// Queue name (repeatable); the queue must exist.
        #[arg(long = "queue")]
        queues: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SuperadminAction {
    /// Create a platform operator.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, env = "ATENDE_NEW_SUPERADMIN_PASSWORD")]
        password: String,
    },
}

/// Runs a command other than `serve`; returns the line to print.
pub async fn run_admin_command(config: &Config, command: Command) -> anyhow::Result<String> {
    if let Command::Bench { scenario } = command {
        return match scenario {
            BenchScenario::Startup { runs } => crate::bench::startup(runs).await,
            BenchScenario::Ingest {
                messages,
                contacts,
                concurrency,
            } => {
                crate::bench_ingest::run(crate::bench_ingest::IngestBench {
                    messages,
                    contacts,
                    concurrency,
                })
                .await
            }
            BenchScenario::TicketList {
                tickets,
                contacts,
                messages,
                requests,
                database_url,
            } => {
                crate::bench_list::run(crate::bench_list::Options {
                    tickets,
                    contacts,
                    messages,
                    requests,
                    database_url,
                })
                .await
            }
            BenchScenario::AttendancePage {
                tickets,
                requests,
                database_url,
            } => {
                crate::bench_page::run(crate::bench_list::Options {
                    tickets,
                    contacts: None,
                    messages: None,
                    requests,
                    database_url,
                })
                .await
            }
            BenchScenario::Outbound {
                messages,
                chats,
                requests,
                rate,
            } => {
                crate::bench_outbound::run(crate::bench_outbound::OutboundBench {
                    messages,
                    chats,
                    requests,
                    rate,
                })
                .await
            }
            BenchScenario::Live {
                agents,
                messages,
                rate,
            } => {
                crate::bench_live::live(crate::bench_live::LiveBench {
                    agents,
                    messages,
                    rate,
                })
                .await
            }
        };
    }
    let db = open_store(config).await?;
    let outcome = async {
        match command {
            Command::Serve | Command::Bench { .. } => bail!("not an admin command"),
            Command::Migrate => Ok("database is up to date".to_owned()),
            Command::Tenant {
                action:
                    TenantAction::Create {
                        slug,
                        name,
                        admin_email,
                        admin_password,
                    },
            } => {
                let engine = open_engine(config, db.clone()).await?;
                let (tenant, admin) = engine
                    .create_tenant(&slug, &name, &admin_email, &admin_password, None)
                    .await?;
                Ok(format!(
                    "created tenant {} (id {}) with admin {}",
                    tenant.slug, tenant.id, admin.email
                ))
            }
            Command::User {
                action:
                    UserAction::Create {
                        tenant,
                        email,
                        password,
                        profile,
                        name,
                        queues,
                    },
            } => {
                let engine = open_engine(config, db.clone()).await?;
                let profile: Profile = profile
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("--profile: {e}"))?;
                let tenant_row = atende_engine::db::tenants::platform_find_by_slug(&db, &tenant)
                    .await?
                    .with_context(|| format!("no tenant with slug '{tenant}'"))?;
                let mut queue_ids = Vec::new();
                for queue in &queues {
                    let found = atende_engine::db::queues::find_by_name(&db, tenant_row.id, queue)
                        .await?
                        .with_context(|| {
                            format!("no queue named '{queue}' in tenant '{tenant}'")
                        })?;
                    queue_ids.push(found.id);
                }
                let display_name =
                    name.unwrap_or_else(|| email.split('@').next().unwrap_or("user").to_owned());
                let user = engine
                    .create_user(
                        tenant_row.id,
                        UserDraft {
                            email,
                            name: display_name,
                            password,
                            profile,
                            queue_ids,
                            business_hours: None,
                            timezone: None,
                            locale: None,
                        },
                    )
                    .await?;
                Ok(format!(
                    "created user {} (id {}) in tenant {}",
                    user.email, user.id, tenant_row.slug
                ))
            }
            Command::Superadmin {
                action: SuperadminAction::Create { email, password },
            } => {
                let engine = open_engine(config, db.clone()).await?;
                let user = engine.create_superadmin(&email, &password).await?;
                Ok(format!(
                    "created platform operator {} (id {})",
                    user.email, user.id
                ))
            }
        }
    }
    .await;
    db.close().await;
    outcome
}
