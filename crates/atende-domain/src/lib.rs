//! The vocabulary and the rules of atende: ids, entities, the settings registry and the pure
//! decisions (visibility, routing, lifecycle, business hours, cadence).
//!
//! This crate does no IO and has no async: every rule here can be called from the SQL layer, the API
//! and the live push alike, and tested with plain values. It must not depend on any other atende crate.

pub mod dashboard;
pub mod delivery;
pub mod hours;
pub mod ids;
pub mod lifecycle;
pub mod maintenance;
pub mod model;
pub mod phone;
pub mod routing;
pub mod schedule;
pub mod settings;
pub mod signature;
pub mod template;
pub mod text;
pub mod time;
pub mod validation;
pub mod visibility;

pub use ids::*;
pub use model::*;
pub use time::Timestamp;
pub use validation::{FieldError, ValidationError};
