//! Background work of a running server (timers, sweeps). Started once by `serve`.

use crate::Engine;

/// Starts every background task; they stop when `shutdown` resolves.
pub fn start(engine: &Engine, shutdown: tokio::sync::watch::Receiver<bool>) {
    let _ = (engine, shutdown);
}
