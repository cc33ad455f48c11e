//! A few Prometheus counters kept with atomics: enough for request rates and errors without a
//! global recorder (several servers can run in one test process).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub struct Metrics {
    started: Instant,
    requests: [AtomicU64; 5],
    request_micros_total: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            requests: Default::default(),
            request_micros_total: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn record(&self, status: u16, elapsed_micros: u64) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.requests[class].fetch_add(1, Ordering::Relaxed);
        self.request_micros_total
            .fetch_add(elapsed_micros, Ordering::Relaxed);
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP atende_http_requests_total HTTP requests answered, by status class.\n",
        );
        out.push_str("# TYPE atende_http_requests_total counter\n");
        for (index, counter) in self.requests.iter().enumerate() {
            let _ = writeln!(
                out,
                "atende_http_requests_total{{class=\"{}xx\"}} {}",
                index + 1,
                counter.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP atende_http_request_seconds_total Time spent answering HTTP requests.\n",
        );
        out.push_str("# TYPE atende_http_request_seconds_total counter\n");
        let seconds = self.request_micros_total.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "atende_http_request_seconds_total {seconds}");
        out.push_str("# HELP atende_uptime_seconds Seconds since the server started.\n");
        out.push_str("# TYPE atende_uptime_seconds gauge\n");
        let _ = writeln!(
            out,
            "atende_uptime_seconds {}",
            self.started.elapsed().as_secs_f64()
        );
        out
    }
}
