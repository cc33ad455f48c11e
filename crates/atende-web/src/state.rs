//! What every handler can reach.

use crate::metrics::Metrics;
use atende_engine::Engine;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
}
