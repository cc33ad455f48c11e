//! Background work of a running server (timers, sweeps). Started once by `serve`.
//!
//! The auto-resolve worker sleeps until the earliest `auto_resolve_due_at` of every tenant (an
//! index lookup, not a scan), at most [`AUTO_RESOLVE_MAX_SLEEP`] so due times written by another
//! instance sharing the database are seen too, and wakes early when this instance stores an
//! earlier due time. Several instances may run it: a ticket two of them race to close is closed
//! once, the other's guarded update finds it changed and skips it.

use crate::Engine;
use crate::automations::AUTO_RESOLVE_BATCH;
use atende_domain::Timestamp;
use std::time::Duration;
use tokio::sync::watch;

/// Longest sleep of the auto-resolve worker between looks at the store.
pub const AUTO_RESOLVE_MAX_SLEEP: Duration = Duration::from_secs(60);

/// Shortest sleep between passes.
const MIN_SLEEP_MS: i64 = 100;

/// Pause after a failed look at the store, so a database outage is not hammered.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);

/// The workers' notion of now: the wall clock, shifted ahead in tests so a due time minutes
/// away comes in a second without backdating the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    pub ahead_ms: i64,
}

impl Clock {
    pub fn now(self) -> Timestamp {
        Timestamp::now().plus_millis(self.ahead_ms)
    }
}

/// Starts every background task; they stop when `shutdown` resolves.
pub fn start(engine: &Engine, shutdown: watch::Receiver<bool>) {
    crate::outbound::start_sender(engine, shutdown.clone());
    crate::maintenance::start_maintenance_worker(engine, shutdown.clone());
    tokio::spawn(auto_resolve_worker(
        engine.clone(),
        shutdown,
        Clock::default(),
    ));
}

/// Closes idle tickets when their due time comes (SPEC §8), until `shutdown` says stop.
pub async fn auto_resolve_worker(
    engine: Engine,
    mut shutdown: watch::Receiver<bool>,
    clock: Clock,
) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        let sleep = match next_sleep(&engine, clock).await {
            Ok(Some(sleep)) => sleep,
            // A full batch: more may be due right now.
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(%error, "auto-resolve worker: cannot read due tickets");
                RETRY_AFTER_ERROR
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = engine.automations().woken() => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    tracing::debug!("auto-resolve worker stopped");
}

/// Runs one pass; `None` when the batch was full (go on at once), else how long to sleep.
async fn next_sleep(engine: &Engine, clock: Clock) -> crate::EngineResult<Option<Duration>> {
    let now = clock.now();
    let served = engine.auto_resolve_pass(now).await?;
    if i64::try_from(served).unwrap_or(i64::MAX) >= AUTO_RESOLVE_BATCH {
        return Ok(None);
    }
    let cap = now.plus_millis(i64::try_from(AUTO_RESOLVE_MAX_SLEEP.as_millis()).unwrap_or(60_000));
    let next = atende_db::lifecycle::platform_next_auto_resolve_due(engine.db()).await?;
    let until = next.map_or(cap, |next| next.min(cap));
    engine.automations().sleeping_until(until);
    // A floor, so a due ticket that a pass could not close (it changed meanwhile) is looked at
    // again shortly instead of in a tight loop.
    let millis = until
        .millis()
        .saturating_sub(clock.now().millis())
        .max(MIN_SLEEP_MS);
    Ok(Some(Duration::from_millis(
        u64::try_from(millis).unwrap_or(0),
    )))
}
