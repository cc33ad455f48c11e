//! First run: on an empty database, create the `default` tenant and its admin (SPEC §13).

use crate::Config;
use atende_engine::Engine;

pub const DEFAULT_TENANT_SLUG: &str = "default";
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@localhost";

/// Creates tenant `default` and an admin when no tenant exists yet. The admin comes from
/// `ATENDE_ADMIN_EMAIL`/`ATENDE_ADMIN_PASSWORD`, or is `admin@localhost` with a generated password
/// printed once on one line.
pub async fn first_run(engine: &Engine, config: &Config) -> anyhow::Result<()> {
    if atende_engine::db::tenants::platform_count(engine.db()).await? > 0 {
        return Ok(());
    }
    let email = config
        .admin_email
        .clone()
        .unwrap_or_else(|| DEFAULT_ADMIN_EMAIL.to_owned());
    let (password, generated) = match &config.admin_password {
        Some(password) => (password.clone(), false),
        None => (generate_password(), true),
    };
    let (tenant, admin) = engine
        .create_tenant(DEFAULT_TENANT_SLUG, "Default", &email, &password, None)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot create the first admin (ATENDE_ADMIN_EMAIL / ATENDE_ADMIN_PASSWORD): {e}"
            )
        })?;
    tracing::info!(tenant = %tenant.slug, admin = %admin.email, "created the first tenant and its administrator");
    if generated {
        #[allow(clippy::print_stdout)]
        {
            println!(
                "atende: first admin created: email={email} password={password} (shown only once; change it after logging in)"
            );
        }
    }
    Ok(())
}

fn generate_password() -> String {
    let (token, _) = atende_engine::auth::new_token();
    token.trim_start_matches("atd_").chars().take(20).collect()
}
