//! The operations CLI of SPEC §13 and the start-up checks, run as the real binary.

use std::process::Output;

async fn atende(args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Output> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_atende"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("ATENDE_SECRET_KEY");
    for (key, value) in envs {
        command.env(key, value);
    }
    Ok(command.output().await?)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn migrate_tenant_and_user_commands_work_on_a_fresh_database() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().display().to_string();
    let env = [("ATENDE_DATA_DIR", data.as_str())];
    let out = atende(&["migrate"], &env).await?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.path().join("atende.db").exists());

    let out = atende(
        &[
            "tenant",
            "create",
            "--slug",
            "acme",
            "--name",
            "Acme",
            "--admin-email",
            "ana@acme.test",
            "--admin-password",
            "acme-password-1",
        ],
        &env,
    )
    .await?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("created tenant acme"));

    let out = atende(
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "bia@acme.test",
            "--password",
            "bia-password-1",
            "--profile",
            "user",
            "--queue",
            "Nope",
        ],
        &env,
    )
    .await?;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no queue named 'Nope'"),
        "{}",
        text(&out)
    );

    let out = atende(
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "bia@acme.test",
            "--password",
            "bia-password-1",
            "--profile",
            "chief",
        ],
        &env,
    )
    .await?;
    assert!(!out.status.success());
    assert!(text(&out).contains("--profile"), "{}", text(&out));

    let out = atende(
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "bia@acme.test",
            "--password",
            "bia-password-1",
            "--profile",
            "supervisor",
        ],
        &env,
    )
    .await?;
    assert!(out.status.success(), "{}", text(&out));
    let out = atende(
        &[
            "user",
            "create",
            "--tenant",
            "nowhere",
            "--email",
            "c@acme.test",
            "--password",
            "bia-password-1",
        ],
        &env,
    )
    .await?;
    assert!(
        text(&out).contains("no tenant with slug 'nowhere'"),
        "{}",
        text(&out)
    );
    Ok(())
}

#[tokio::test]
async fn unknown_database_scheme_is_a_clear_error() -> anyhow::Result<()> {
    let out = atende(
        &["migrate"],
        &[("DATABASE_URL", "mysql://root@localhost/x")],
    )
    .await?;
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains("sqlite://") && message.contains("postgres://"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn a_different_secret_key_refuses_to_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().display().to_string();
    let create = [
        "superadmin",
        "create",
        "--email",
        "ops@x.test",
        "--password",
        "ops-password-1",
    ];
    let out = atende(&create, &[("ATENDE_DATA_DIR", data.as_str())]).await?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        dir.path().join("secret.key").exists(),
        "the key file is generated on first start"
    );
    let other_key = "ab".repeat(32);
    let again = [
        "superadmin",
        "create",
        "--email",
        "ops2@x.test",
        "--password",
        "ops-password-1",
    ];
    let out = atende(
        &again,
        &[
            ("ATENDE_DATA_DIR", data.as_str()),
            ("ATENDE_SECRET_KEY", other_key.as_str()),
        ],
    )
    .await?;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("different secret key"),
        "{}",
        text(&out)
    );
    let out = atende(&again, &[("ATENDE_DATA_DIR", data.as_str())]).await?;
    assert!(
        out.status.success(),
        "the original key still works: {}",
        text(&out)
    );
    Ok(())
}

#[tokio::test]
async fn first_start_prints_the_generated_admin_password_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().display().to_string();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_atende"))
        .env_remove("DATABASE_URL")
        .env("ATENDE_DATA_DIR", &data)
        .env("ATENDE_LISTEN", &listen)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await??
        .unwrap_or_default();
    assert!(line.contains("email=admin@localhost"), "{line}");
    let password = line
        .split("password=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    assert!(password.len() >= 16);
    let client = reqwest::Client::new();
    let mut status = 0;
    for _ in 0..100 {
        if let Ok(response) = client
            .post(format!("http://{listen}/api/v1/auth/login"))
            .json(&serde_json::json!({"email": "admin@localhost", "password": password}))
            .send()
            .await
        {
            status = response.status().as_u16();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
    child.kill().await?;
    Ok(())
}
