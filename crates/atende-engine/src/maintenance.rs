//! The maintenance actions of SPEC §10: admin-only repair buttons, each run as a background job
//! with progress and a result summary, safe to run twice.
//!
//! `start_maintenance` queues the job (one live job per action and tenant: asking again answers
//! the running one) and audits the start. The maintenance worker claims due maintenance jobs,
//! runs one function per action in batches, and after each batch records progress and renews
//! its lease; a job whose worker died is claimed again when the lease expires and simply runs
//! again, which is safe because every action only applies fixes that are fixed points
//! (`atende_domain::maintenance`) through guarded updates (`atende_db::maintenance`).
//!
//! What each action asks of a channel (may a send be repeated? who is this number?) goes through
//! [`MaintenanceChannels`], so tests can stand in for providers that do not exist yet.

use crate::auth::{ClientInfo, Principal};
use crate::events::EventKind;
use crate::{Engine, EngineError, EngineResult};
use atende_channels::{Channel, ChannelError, ContactLookup};
use atende_db::DbError;
use atende_db::audit::NewAudit;
use atende_db::contacts::ContactFilter;
use atende_db::jobs::{self, Created, NewJob};
use atende_db::maintenance as store;
use atende_domain::delivery::{Cadence, Lane};
use atende_domain::maintenance::{
    self as rules, IdentityFix, JOB_KIND_PREFIX, MaintenanceAction, PhoneCheck, StuckFix,
};
use atende_domain::{
    ChannelKind, Connection, ConnectionId, Contact, ContactId, ContactIdentity, Job, Message,
    TenantId, TicketId, Timestamp,
};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// The most examples of invalid numbers or unknown identities a summary lists (the counts are
/// always complete).
const MAX_SAMPLES: usize = 100;

/// The worker's wake-up bell, kept on the engine.
#[derive(Debug, Default)]
pub struct MaintenanceState {
    wake: Notify,
}

impl MaintenanceState {
    /// Tells the worker a job was queued (it polls the jobs table otherwise).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// What `start_maintenance` answers.
#[derive(Debug, Clone)]
pub struct MaintenanceStart {
    pub job: Job,
    /// The same action was already queued or running in the tenant: `job` is that one.
    pub already_running: bool,
}

impl Engine {
    /// The maintenance worker's wake-up bell.
    pub fn maintenance(&self) -> &MaintenanceState {
        &self.inner.maintenance
    }

    /// `POST /api/v1/maintenance/{action}`, admins only: queues the action's job and audits the
    /// start. While the same action is queued or running in the tenant, answers that job and
    /// starts nothing.
    pub async fn start_maintenance(
        &self,
        principal: &Principal,
        action: MaintenanceAction,
        client: &ClientInfo,
    ) -> EngineResult<MaintenanceStart> {
        let tenant = principal.require_admin()?;
        let new = NewJob {
            kind: action.job_kind(),
            payload: json!({ "action": action.as_str(), "requested_by": principal.user_id() }),
            total: 0,
            due_at: Timestamp::now(),
            dedupe_key: Some(action.job_kind()),
        };
        let job = match jobs::create_or_join(self.db(), tenant, &new).await? {
            Created::Live(job) => {
                return Ok(MaintenanceStart {
                    job,
                    already_running: true,
                });
            }
            Created::New(job) => job,
        };
        self.maintenance().wake();
        atende_db::audit::record(
            self.db(),
            Some(tenant),
            &NewAudit {
                user_id: Some(principal.user_id()),
                action: "maintenance.start".into(),
                entity: "job".into(),
                entity_id: Some(job.id.to_string()),
                detail: json!({ "action": action.as_str() }),
                ip: Some(client.ip.clone()),
            },
        )
        .await?;
        tracing::info!(tenant = %tenant, action = action.as_str(), job = %job.id, "maintenance started");
        Ok(MaintenanceStart {
            job,
            already_running: false,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The channel seam
// ---------------------------------------------------------------------------------------------

/// A boxed answer of a channel, so adapters of different types sit behind one object.
pub type ChannelFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the maintenance actions ask of a connection's channel. [`AdapterChannels`] asks the
/// `atende_channels` adapter of the connection's kind; tests pass fakes.
pub trait MaintenanceChannels: Send + Sync + 'static {
    /// Whether a message sent again under the same idempotency key can never reach the contact
    /// twice on this connection.
    fn resend_is_idempotent<'a>(&'a self, connection: &'a Connection) -> ChannelFuture<'a, bool>;

    /// The provider's answer about each identity, in order; `ChannelError::Unsupported` when the
    /// channel has no directory.
    fn lookup_contacts<'a>(
        &'a self,
        connection: &'a Connection,
        external_ids: &'a [String],
    ) -> ChannelFuture<'a, Result<Vec<ContactLookup>, ChannelError>>;
}

/// The real channels: the adapter of the connection's kind.
pub struct AdapterChannels {
    engine: Engine,
}

impl AdapterChannels {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

impl MaintenanceChannels for AdapterChannels {
    fn resend_is_idempotent<'a>(&'a self, connection: &'a Connection) -> ChannelFuture<'a, bool> {
        Box::pin(async move {
            match connection.kind {
                ChannelKind::Webchat => {
                    let key = connection.public_key.as_deref().unwrap_or_default();
                    matches!(
                        self.engine.webchat(key).await,
                        Ok(Some((_, adapter))) if adapter.resend_is_idempotent()
                    )
                }
                // No adapter yet: nothing proves a repeat harmless.
                _ => false,
            }
        })
    }

    fn lookup_contacts<'a>(
        &'a self,
        connection: &'a Connection,
        external_ids: &'a [String],
    ) -> ChannelFuture<'a, Result<Vec<ContactLookup>, ChannelError>> {
        Box::pin(async move {
            match connection.kind {
                ChannelKind::Webchat => {
                    let key = connection.public_key.as_deref().unwrap_or_default();
                    match self.engine.webchat(key).await {
                        Ok(Some((_, adapter))) => adapter.lookup_contacts(external_ids).await,
                        Ok(None) => Err(ChannelError::Unsupported(
                            "the web-chat connection has no widget key".into(),
                        )),
                        Err(error) => Err(ChannelError::Temporary(error.to_string())),
                    }
                }
                other => Err(ChannelError::Unsupported(format!(
                    "looking contacts up on {other} connections is not available yet"
                ))),
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------------------

/// Tunables of the maintenance worker; the defaults are the product's.
#[derive(Debug, Clone)]
pub struct MaintenanceConfig {
    /// How long a claimed job is ours without news; renewed after every batch.
    pub lease_ms: i64,
    /// Longest sleep without looking for due jobs (jobs queued by other instances).
    pub poll: Duration,
    /// Rows per batch (and per progress report).
    pub batch: i64,
    /// Identities per directory lookup (reference/channels.md §5: about 50 per request).
    pub lookup_batch: usize,
    /// Runs of a job that keeps failing before it is marked failed.
    pub max_attempts: i64,
    /// Wait before running a failed job again.
    pub retry_after_ms: i64,
    /// Longest pause a provider's rate limit may impose on a lookup before it counts as failed.
    pub max_rate_limit_wait: Duration,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            lease_ms: 5 * 60_000,
            poll: Duration::from_secs(2),
            batch: 200,
            lookup_batch: 50,
            max_attempts: 3,
            retry_after_ms: 30_000,
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

/// Starts the maintenance worker with the real adapters and the product's tunables.
pub fn start_maintenance_worker(engine: &Engine, shutdown: watch::Receiver<bool>) {
    let channels: Arc<dyn MaintenanceChannels> = Arc::new(AdapterChannels::new(engine.clone()));
    tokio::spawn(maintenance_worker(
        engine.clone(),
        shutdown,
        channels,
        MaintenanceConfig::default(),
    ));
}

/// Runs due maintenance jobs, one at a time, until `shutdown` says stop. Started by
/// `workers::start` with the real channels; tests start it with their own.
pub async fn maintenance_worker(
    engine: Engine,
    mut shutdown: watch::Receiver<bool>,
    channels: Arc<dyn MaintenanceChannels>,
    config: MaintenanceConfig,
) {
    let owner = format!("maintenance-{}", hex::encode(rand::random::<[u8; 8]>()));
    loop {
        if *shutdown.borrow() {
            break;
        }
        let claimed = jobs::platform_claim_due_of_kind(
            engine.db(),
            JOB_KIND_PREFIX,
            Timestamp::now(),
            &owner,
            config.lease_ms,
            1,
        )
        .await;
        match claimed {
            Ok(claimed) if !claimed.is_empty() => {
                for job in claimed {
                    let run = Run {
                        engine: &engine,
                        channels: channels.as_ref(),
                        config: &config,
                        job: &job,
                        owner: &owner,
                        shutdown: &shutdown,
                        done: 0,
                        total: 0,
                    };
                    run.execute().await;
                }
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "maintenance worker: cannot claim jobs"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.poll) => {}
            _ = engine.maintenance().woken() => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    tracing::debug!("maintenance worker stopped");
}

/// Why an action stopped before its end.
#[derive(Debug)]
enum Stop {
    Failed(EngineError),
    /// The lease went to another worker (ours expired) or the job ended: that worker goes on.
    LeaseLost,
    /// The server is stopping: the lease expires and the job runs again later.
    Shutdown,
}

impl From<EngineError> for Stop {
    fn from(error: EngineError) -> Self {
        Stop::Failed(error)
    }
}

impl From<DbError> for Stop {
    fn from(error: DbError) -> Self {
        Stop::Failed(error.into())
    }
}

type Step<T> = Result<T, Stop>;

/// One claimed job on its way: the action's context and its progress.
struct Run<'a> {
    engine: &'a Engine,
    channels: &'a dyn MaintenanceChannels,
    config: &'a MaintenanceConfig,
    job: &'a Job,
    owner: &'a str,
    shutdown: &'a watch::Receiver<bool>,
    done: i64,
    total: i64,
}

impl Run<'_> {
    fn tenant(&self) -> TenantId {
        self.job.tenant_id
    }

    fn db(&self) -> &atende_db::Db {
        self.engine.db()
    }

    /// Runs the job's action and records its outcome.
    async fn execute(mut self) {
        let job = self.job;
        let action = match self.runnable_action() {
            Ok(action) => action,
            Err(reason) => {
                if let Err(error) = jobs::fail(self.db(), job.tenant_id, job.id, &reason).await {
                    tracing::warn!(%error, job = %job.id, "maintenance: cannot fail a job");
                }
                return;
            }
        };
        let outcome = match action {
            MaintenanceAction::SendStuckMessages => self.send_stuck_messages().await,
            MaintenanceAction::ResolveFailedMessages => self.resolve_failed_messages().await,
            MaintenanceAction::ValidateContacts => self.validate_contacts().await,
            MaintenanceAction::FixImportedMessageDates => self.fix_imported_message_dates().await,
            MaintenanceAction::FixTicketDates => self.fix_ticket_dates().await,
        };
        let recorded = match outcome {
            Ok(result) => self.finish(&result).await,
            Err(Stop::LeaseLost) => {
                tracing::info!(job = %job.id, "maintenance: lease lost; another worker has the job");
                Ok(())
            }
            Err(Stop::Shutdown) => {
                tracing::info!(job = %job.id, "maintenance: stopping; the job runs again later");
                Ok(())
            }
            Err(Stop::Failed(error)) => {
                tracing::warn!(%error, job = %job.id, action = action.as_str(), "maintenance failed");
                let reason = error.to_string();
                if job.attempts < self.config.max_attempts {
                    let due = Timestamp::now().plus_millis(self.config.retry_after_ms);
                    jobs::retry_later(self.db(), job.tenant_id, job.id, due, &reason).await
                } else {
                    jobs::fail(self.db(), job.tenant_id, job.id, &reason).await
                }
            }
        };
        if let Err(error) = recorded {
            tracing::warn!(%error, job = %job.id, "maintenance: cannot record the outcome");
        }
    }

    /// The job's action, or why it must not run.
    fn runnable_action(&self) -> Result<MaintenanceAction, String> {
        let job = self.job;
        let Some(action) = MaintenanceAction::of_job_kind(&job.kind) else {
            return Err(format!("unknown maintenance job '{}'", job.kind));
        };
        // Claimed again and again without an outcome: its runs keep dying (a crash, a lease too
        // short). Failures are retried by `execute` up to the limit; this stops a crash loop.
        if job.attempts > self.config.max_attempts {
            return Err(format!(
                "gave up after {} runs that did not finish",
                job.attempts - 1
            ));
        }
        Ok(action)
    }

    async fn finish(&mut self, result: &Value) -> atende_db::DbResult<()> {
        let job = self.job;
        let lease_until = Timestamp::now().plus_millis(self.config.lease_ms);
        let total = self.total.max(self.done);
        let held = jobs::heartbeat(
            self.db(),
            job.tenant_id,
            job.id,
            self.owner,
            total,
            total,
            lease_until,
        )
        .await?;
        if held {
            jobs::finish(self.db(), job.tenant_id, job.id, result).await?;
            tracing::info!(job = %job.id, kind = %job.kind, %result, "maintenance done");
        }
        Ok(())
    }

    /// Records the amount of work found.
    async fn begin(&mut self, total: i64) -> Step<()> {
        self.total = total;
        self.report().await
    }

    /// Records `n` more rows done (a batch) and renews the lease; stops when the lease was lost
    /// or the server is stopping.
    async fn advance(&mut self, n: usize) -> Step<()> {
        self.done += i64::try_from(n).unwrap_or(i64::MAX);
        // Rows that appeared after the count (live traffic) still count as done work.
        self.total = self.total.max(self.done);
        self.report().await?;
        if *self.shutdown.borrow() {
            return Err(Stop::Shutdown);
        }
        Ok(())
    }

    async fn report(&mut self) -> Step<()> {
        let job = self.job;
        let lease_until = Timestamp::now().plus_millis(self.config.lease_ms);
        let held = jobs::heartbeat(
            self.db(),
            job.tenant_id,
            job.id,
            self.owner,
            self.done,
            self.total,
            lease_until,
        )
        .await?;
        if held { Ok(()) } else { Err(Stop::LeaseLost) }
    }

    /// Announces a message an action moved; a failure here is logged, the fix stands.
    async fn announce_message(&self, message: &Message) {
        self.engine.publish_status(message).await;
    }

    // -----------------------------------------------------------------------------------------
    // The actions
    // -----------------------------------------------------------------------------------------

    /// Re-queues outbound messages stuck in `queued`/`sending` for more than 5 minutes, never
    /// handing over again one the provider accepted (see `rules::stuck_fix`).
    async fn send_stuck_messages(&mut self) -> Step<Value> {
        let tenant = self.tenant();
        let before = Timestamp::now().plus_millis(-rules::STUCK_AFTER_MS);
        let total = store::count_stuck(self.db(), tenant, before).await?;
        self.begin(total).await?;
        let mut idempotent: HashMap<ConnectionId, bool> = HashMap::new();
        let (mut examined, mut requeued, mut marked_sent) = (0u64, 0u64, 0u64);
        let (mut left_unconfirmed, mut changed_meanwhile) = (0u64, 0u64);
        let mut after = None;
        loop {
            let page =
                store::stuck_messages(self.db(), tenant, before, after, self.config.batch).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id);
            for stuck in &page {
                examined += 1;
                let unconfirmed =
                    stuck.status == atende_domain::MessageStatus::Sending && !stuck.has_provider_id;
                let repeatable = if unconfirmed {
                    self.resend_is_idempotent(tenant, stuck.connection_id, &mut idempotent)
                        .await?
                } else {
                    false
                };
                let fix = rules::stuck_fix(stuck.status, stuck.has_provider_id, repeatable);
                let moved =
                    store::apply_stuck_fix(self.db(), tenant, stuck, fix, before, Timestamp::now())
                        .await?;
                match (fix, moved) {
                    (StuckFix::Leave, _) => left_unconfirmed += 1,
                    (_, None) => changed_meanwhile += 1,
                    (fix, Some(message)) => {
                        if fix == StuckFix::MarkSent {
                            marked_sent += 1;
                        } else {
                            requeued += 1;
                        }
                        self.announce_message(&message).await;
                    }
                }
            }
            self.advance(page.len()).await?;
        }
        if requeued > 0 {
            self.engine.outbound().wake();
        }
        Ok(json!({
            "examined": examined,
            "requeued": requeued,
            "marked_sent": marked_sent,
            "left_unconfirmed": left_unconfirmed,
            "changed_meanwhile": changed_meanwhile,
        }))
    }

    async fn resend_is_idempotent(
        &self,
        tenant: TenantId,
        connection: ConnectionId,
        known: &mut HashMap<ConnectionId, bool>,
    ) -> Step<bool> {
        if let Some(answer) = known.get(&connection) {
            return Ok(*answer);
        }
        let answer = match atende_db::connections::get(self.db(), tenant, connection).await {
            Ok(connection) => self.channels.resend_is_idempotent(&connection).await,
            Err(DbError::NotFound) => false,
            Err(other) => return Err(other.into()),
        };
        known.insert(connection, answer);
        Ok(answer)
    }

    /// Marks errored outbound messages `failed` with their reason so their chats stop waiting;
    /// nothing is deleted, and each can be resent from the chat.
    async fn resolve_failed_messages(&mut self) -> Step<Value> {
        let tenant = self.tenant();
        let before = Timestamp::now().plus_millis(-rules::STUCK_AFTER_MS);
        let total = store::count_errored(self.db(), tenant, before).await?;
        self.begin(total).await?;
        let mut failed = 0u64;
        loop {
            let moved = store::fail_errored(
                self.db(),
                tenant,
                before,
                rules::UNSETTLED_SEND_REASON,
                Timestamp::now(),
                self.config.batch,
            )
            .await?;
            for message in &moved {
                self.announce_message(message).await;
            }
            failed += u64::try_from(moved.len()).unwrap_or(u64::MAX);
            let last_batch = i64::try_from(moved.len()).unwrap_or(i64::MAX) < self.config.batch;
            self.advance(moved.len()).await?;
            if last_batch {
                break;
            }
        }
        if failed > 0 {
            // The chats those messages held may have later messages ready to go.
            self.engine.outbound().wake();
        }
        Ok(json!({ "failed": failed }))
    }

    /// Checks every contact: phones normalised to E.164 (fixed, or reported when they are no
    /// number), identities looked up on their channel (cadenced like bulk sends): fixed to the
    /// provider's canonical id, merged when that id is another contact's, reported when the
    /// channel has no such account, skipped when the channel has no directory.
    async fn validate_contacts(&mut self) -> Step<Value> {
        let tenant = self.tenant();
        let total = store::count_contacts(self.db(), tenant).await?;
        self.begin(total).await?;
        let mut report = ContactReport::default();
        let mut directory = Directory::open(self.engine, tenant).await?;
        let mut absorbed: HashSet<ContactId> = HashSet::new();
        let mut after = None;
        loop {
            let filter = ContactFilter {
                after,
                limit: self.config.batch,
                ..ContactFilter::default()
            };
            let page = atende_db::contacts::list(self.db(), tenant, &filter).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id);
            let live: Vec<&Contact> = page.iter().filter(|c| !absorbed.contains(&c.id)).collect();
            for contact in &live {
                report.contacts += 1;
                self.check_phone(tenant, contact, &mut report).await?;
            }
            let mut by_kind: HashMap<ChannelKind, Vec<&ContactIdentity>> = HashMap::new();
            for identity in live.iter().flat_map(|c| c.identities.iter()) {
                by_kind.entry(identity.channel).or_default().push(identity);
            }
            for (kind, identities) in by_kind {
                for chunk in identities.chunks(self.config.lookup_batch.max(1)) {
                    let answers = self
                        .lookup(&mut directory, kind, chunk, &mut report)
                        .await?;
                    // Cadenced lookups are slow: keep the lease between them.
                    self.report().await?;
                    let Some(answers) = answers else {
                        continue;
                    };
                    for (identity, answer) in chunk.iter().zip(&answers) {
                        if absorbed.contains(&identity.contact_id) {
                            continue;
                        }
                        if let Some(absorb) = self
                            .fix_identity(tenant, identity, answer, &mut report)
                            .await?
                        {
                            absorbed.insert(absorb);
                        }
                    }
                }
            }
            self.advance(page.len()).await?;
        }
        Ok(report.into_json())
    }

    async fn check_phone(
        &self,
        tenant: TenantId,
        contact: &Contact,
        report: &mut ContactReport,
    ) -> Step<()> {
        let Some(phone) = contact.phone.as_deref() else {
            return Ok(());
        };
        match rules::check_phone(phone) {
            PhoneCheck::Valid => {}
            PhoneCheck::Fix(normal) => {
                let now = Timestamp::now();
                if store::set_phone(self.db(), tenant, contact.id, phone, &normal, now).await? {
                    report.phones_fixed += 1;
                } else {
                    report.changed_meanwhile += 1;
                }
            }
            PhoneCheck::Invalid(error) => {
                report.invalid_phones += 1;
                if report.invalid_phone_samples.len() < MAX_SAMPLES {
                    report.invalid_phone_samples.push(json!({
                        "contact_id": contact.id,
                        "phone": phone,
                        "reason": error.to_string(),
                    }));
                }
            }
        }
        Ok(())
    }

    /// Asks the directory of `kind` about a chunk of identities, waiting the connection's
    /// cadence first. `None`: not asked or no usable answer (counted in the report).
    async fn lookup(
        &self,
        directory: &mut Directory,
        kind: ChannelKind,
        chunk: &[&ContactIdentity],
        report: &mut ContactReport,
    ) -> Step<Option<Vec<ContactLookup>>> {
        let count = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        if directory.unsupported.contains(&kind) {
            report.skipped_unsupported += count;
            return Ok(None);
        }
        let Some(entry) = directory.connections.get_mut(&kind) else {
            report.skipped_no_connection += count;
            return Ok(None);
        };
        let ids: Vec<String> = chunk.iter().map(|i| i.external_id.clone()).collect();
        let mut rate_limited = 0;
        loop {
            if let Some(free) = entry.next_free {
                tokio::time::sleep_until(free).await;
            }
            let answer = self.channels.lookup_contacts(&entry.connection, &ids).await;
            if !matches!(answer, Err(ChannelError::Unsupported(_))) {
                // A provider call: the next one keeps the cadence gap, like a bulk send.
                entry.next_free = entry
                    .cadence
                    .waits(Lane::Bulk)
                    .then(|| Instant::now() + entry.gap());
            }
            match answer {
                Ok(answers) if answers.len() == ids.len() => {
                    report.identities_checked += count;
                    return Ok(Some(answers));
                }
                Ok(answers) => {
                    report.lookup_failed(
                        count,
                        format!("{} answers for {} identities", answers.len(), ids.len()),
                    );
                    return Ok(None);
                }
                Err(ChannelError::Unsupported(_)) => {
                    directory.unsupported.insert(kind);
                    report.skipped_unsupported += count;
                    return Ok(None);
                }
                Err(ChannelError::RateLimited { retry_after_ms }) if rate_limited < 3 => {
                    rate_limited += 1;
                    let wait =
                        Duration::from_millis(retry_after_ms).min(self.config.max_rate_limit_wait);
                    entry.next_free = Some(Instant::now() + wait);
                }
                Err(error) => {
                    report.lookup_failed(count, error.to_string());
                    return Ok(None);
                }
            }
        }
    }

    /// Applies the directory's answer to one identity; answers the contact a merge absorbed.
    async fn fix_identity(
        &self,
        tenant: TenantId,
        identity: &ContactIdentity,
        answer: &ContactLookup,
        report: &mut ContactReport,
    ) -> Step<Option<ContactId>> {
        let canonical = match answer {
            ContactLookup::Found { canonical_id } => Some(canonical_id.as_str()),
            ContactLookup::Missing => None,
        };
        let owner = match canonical {
            Some(canonical) if canonical != identity.external_id => {
                atende_db::contacts::find_by_identity(
                    self.db(),
                    tenant,
                    identity.channel,
                    canonical,
                )
                .await?
                .map(|c| c.id)
            }
            _ => None,
        };
        let fix = rules::identity_fix(identity.contact_id, &identity.external_id, canonical, owner);
        match fix {
            IdentityFix::Keep => report.identities_valid += 1,
            IdentityFix::Missing => {
                report.not_on_channel += 1;
                if report.not_on_channel_samples.len() < MAX_SAMPLES {
                    report.not_on_channel_samples.push(json!({
                        "contact_id": identity.contact_id,
                        "channel": identity.channel,
                        "external_id": identity.external_id,
                    }));
                }
            }
            IdentityFix::Rename(canonical) => {
                let renamed = store::rename_identity(
                    self.db(),
                    tenant,
                    identity.id,
                    &identity.external_id,
                    &canonical,
                )
                .await;
                match renamed {
                    Ok(true) => report.identities_fixed += 1,
                    // Another contact took the canonical id meanwhile: the next run merges.
                    Ok(false) | Err(DbError::Conflict { .. }) => report.changed_meanwhile += 1,
                    Err(other) => return Err(other.into()),
                }
            }
            IdentityFix::Merge { keep, absorb } => {
                match atende_db::contacts::merge(self.db(), tenant, keep, absorb).await {
                    Ok(_) => {
                        report.contacts_merged += 1;
                        return Ok(Some(absorb));
                    }
                    Err(DbError::NotFound) => report.changed_meanwhile += 1,
                    Err(other) => return Err(other.into()),
                }
            }
        }
        Ok(None)
    }

    /// Sets `sent_at` of imported messages to the provider's timestamp where they differ, then
    /// recomputes the dates of the tickets they belong to.
    async fn fix_imported_message_dates(&mut self) -> Step<Value> {
        let tenant = self.tenant();
        let total = store::count_misdated_imports(self.db(), tenant).await?;
        let undated = store::count_undated_imports(self.db(), tenant).await?;
        self.begin(total).await?;
        let mut fixed = 0u64;
        let mut tickets: BTreeSet<TicketId> = BTreeSet::new();
        loop {
            let moved =
                store::fix_misdated_imports(self.db(), tenant, Timestamp::now(), self.config.batch)
                    .await?;
            fixed += u64::try_from(moved.len()).unwrap_or(u64::MAX);
            tickets.extend(moved.iter().map(|(_, ticket)| *ticket));
            let last_batch = i64::try_from(moved.len()).unwrap_or(i64::MAX) < self.config.batch;
            self.advance(moved.len()).await?;
            if last_batch {
                break;
            }
        }
        let mut tickets_fixed = 0u64;
        for ticket in tickets {
            if let Some(found) = store::ticket_dates_of(self.db(), tenant, ticket).await?
                && self.fix_dates(tenant, &found).await? == Some(true)
            {
                tickets_fixed += 1;
            }
        }
        Ok(json!({
            "fixed": fixed,
            "without_provider_timestamp": undated,
            "tickets_fixed": tickets_fixed,
        }))
    }

    /// Recomputes last message, `last_message_at`, `last_inbound_at` and `updated_at` of every
    /// ticket whose dates disagree with its messages.
    async fn fix_ticket_dates(&mut self) -> Step<Value> {
        let tenant = self.tenant();
        let total = store::count_tickets(self.db(), tenant).await?;
        self.begin(total).await?;
        let (mut examined, mut fixed, mut changed_meanwhile) = (0u64, 0u64, 0u64);
        let mut after = None;
        loop {
            let page = store::ticket_dates(self.db(), tenant, after, self.config.batch).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.ticket_id);
            for found in &page {
                examined += 1;
                match self.fix_dates(tenant, found).await? {
                    Some(true) => fixed += 1,
                    Some(false) => changed_meanwhile += 1,
                    None => {}
                }
            }
            self.advance(page.len()).await?;
        }
        Ok(json!({
            "tickets": examined,
            "fixed": fixed,
            "changed_meanwhile": changed_meanwhile,
        }))
    }

    /// `None`: the ticket's dates agree with its messages; else whether the fix was written.
    async fn fix_dates(
        &self,
        tenant: TenantId,
        found: &store::TicketDatesRow,
    ) -> Step<Option<bool>> {
        let Some(wanted) = rules::ticket_dates_fix(found.current, found.messages) else {
            return Ok(None);
        };
        let written = store::set_ticket_dates(self.db(), tenant, found, wanted).await?;
        if written {
            self.announce_ticket(tenant, found.ticket_id).await;
        }
        Ok(Some(written))
    }

    /// Announces a ticket an action changed (its place in the lists moved); failures are logged.
    async fn announce_ticket(&self, tenant: TenantId, ticket: TicketId) {
        let result: EngineResult<()> = async {
            let ticket = atende_db::tickets::get(self.db(), tenant, ticket).await?;
            self.engine
                .publish_ticket(tenant, EventKind::TicketUpdated, &ticket, None)
                .await?;
            Ok(())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, ticket = %ticket, "maintenance: cannot announce a ticket");
        }
    }
}

/// The connections `validate_contacts` asks, one per channel kind, with their pacing.
struct Directory {
    connections: HashMap<ChannelKind, DirectoryEntry>,
    /// Kinds whose channel answered that it has no directory: not asked again in this run.
    unsupported: HashSet<ChannelKind>,
}

struct DirectoryEntry {
    connection: Connection,
    cadence: Cadence,
    next_free: Option<Instant>,
}

impl DirectoryEntry {
    fn gap(&self) -> Duration {
        Duration::from_millis(self.cadence.gap_ms(rand::random::<f64>()))
    }
}

impl Directory {
    /// The tenant's first connection of each kind (the identity names a channel, not a
    /// connection; any connection of that channel can ask its directory).
    async fn open(engine: &Engine, tenant: TenantId) -> EngineResult<Directory> {
        let settings = engine.settings(tenant).await?;
        let mut connections: HashMap<ChannelKind, DirectoryEntry> = HashMap::new();
        let mut all = atende_db::connections::list(engine.db(), tenant).await?;
        all.sort_by_key(|c| c.id);
        for connection in all {
            // A lookup is bulk work: cadenced whenever the connection is, `fast_send` or not.
            let cadence = Cadence::of(
                &connection,
                false,
                settings.send_delay_min_ms,
                settings.send_delay_max_ms,
            );
            connections
                .entry(connection.kind)
                .or_insert(DirectoryEntry {
                    connection,
                    cadence,
                    next_free: None,
                });
        }
        Ok(Directory {
            connections,
            unsupported: HashSet::new(),
        })
    }
}

/// The running summary of `validate_contacts`.
#[derive(Debug, Default)]
struct ContactReport {
    contacts: u64,
    phones_fixed: u64,
    invalid_phones: u64,
    invalid_phone_samples: Vec<Value>,
    identities_checked: u64,
    identities_valid: u64,
    identities_fixed: u64,
    contacts_merged: u64,
    not_on_channel: u64,
    not_on_channel_samples: Vec<Value>,
    skipped_unsupported: u64,
    skipped_no_connection: u64,
    lookup_errors: u64,
    last_lookup_error: Option<String>,
    changed_meanwhile: u64,
}

impl ContactReport {
    fn lookup_failed(&mut self, count: u64, error: String) {
        self.lookup_errors += count;
        self.last_lookup_error = Some(error);
    }

    fn into_json(self) -> Value {
        json!({
            "contacts": self.contacts,
            "phones_fixed": self.phones_fixed,
            "invalid_phones": self.invalid_phones,
            "invalid_phone_samples": self.invalid_phone_samples,
            "identities_checked": self.identities_checked,
            "identities_valid": self.identities_valid,
            "identities_fixed": self.identities_fixed,
            "contacts_merged": self.contacts_merged,
            "not_on_channel": self.not_on_channel,
            "not_on_channel_samples": self.not_on_channel_samples,
            "skipped_unsupported": self.skipped_unsupported,
            "skipped_no_connection": self.skipped_no_connection,
            "lookup_errors": self.lookup_errors,
            "last_lookup_error": self.last_lookup_error,
            "changed_meanwhile": self.changed_meanwhile,
        })
    }
}
