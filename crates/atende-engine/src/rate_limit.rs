//! Login throttling: after repeated failures from one IP or for one e-mail, further attempts are
//! refused for a while (answered 429). Kept in memory: a restart forgives, which is acceptable for a
//! throttle whose job is to make guessing slow, not to keep records.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per e-mail within the window before it is locked.
pub const MAX_FAILURES_PER_EMAIL: u32 = 5;
/// Failures allowed per IP within the window (an office shares one IP).
pub const MAX_FAILURES_PER_IP: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Default)]
pub struct LoginLimiter {
    by_email: Mutex<HashMap<String, Window>>,
    by_ip: Mutex<HashMap<String, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl LoginLimiter {
    /// `Err(seconds)` when either key is over its limit.
    pub fn check(&self, email: &str, ip: &str) -> Result<(), u64> {
        let now = Instant::now();
        let email_wait = blocked_for(&self.by_email, email, MAX_FAILURES_PER_EMAIL, now);
        let ip_wait = blocked_for(&self.by_ip, ip, MAX_FAILURES_PER_IP, now);
        match email_wait.max(ip_wait) {
            Some(wait) => Err(wait.as_secs().max(1)),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, email: &str, ip: &str) {
        let now = Instant::now();
        bump(&self.by_email, email, now);
        bump(&self.by_ip, ip, now);
    }

    /// A success clears the e-mail's count (not the IP's: one good account must not unlock guessing).
    pub fn record_success(&self, email: &str) {
        if let Ok(mut map) = self.by_email.lock() {
            map.remove(email);
        }
    }
}

fn blocked_for(
    map: &Mutex<HashMap<String, Window>>,
    key: &str,
    max: u32,
    now: Instant,
) -> Option<Duration> {
    let map = map.lock().ok()?;
    let window = map.get(key)?;
    let elapsed = now.duration_since(window.started);
    (elapsed < WINDOW && window.failures >= max).then(|| WINDOW - elapsed)
}

fn bump(map: &Mutex<HashMap<String, Window>>, key: &str, now: Instant) {
    let Ok(mut map) = map.lock() else { return };
    if map.len() > 100_000 {
        map.retain(|_, w| now.duration_since(w.started) < WINDOW);
    }
    let window = map.entry(key.to_owned()).or_insert(Window {
        started: now,
        failures: 0,
    });
    if now.duration_since(window.started) >= WINDOW {
        *window = Window {
            started: now,
            failures: 0,
        };
    }
    window.failures += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_locked_after_repeated_failures_and_other_emails_are_not() {
        let limiter = LoginLimiter::default();
        for _ in 0..MAX_FAILURES_PER_EMAIL {
            assert!(limiter.check("a@x.com", "1.1.1.1").is_ok());
            limiter.record_failure("a@x.com", "1.1.1.1");
        }
        assert!(limiter.check("a@x.com", "2.2.2.2").is_err());
        assert!(limiter.check("b@x.com", "1.1.1.1").is_ok());
    }

    #[test]
    fn ip_is_locked_after_many_failures_across_emails() {
        let limiter = LoginLimiter::default();
        for n in 0..MAX_FAILURES_PER_IP {
            limiter.record_failure(&format!("u{n}@x.com"), "9.9.9.9");
        }
        assert!(limiter.check("new@x.com", "9.9.9.9").is_err());
        assert!(limiter.check("new@x.com", "8.8.8.8").is_ok());
    }
}
