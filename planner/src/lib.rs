//! bund-planner turns a principal's SQL into an executable plan: the statement guard
//! (read-only statements only), a session per principal over the shared catalog, table
//! resolution with the same NotFound for every invisible name, parameter binding, and the
//! client-facing output schema (no view types, which some Flight SQL clients cannot read).
//!
//! It may import bund-catalogs, bund-udfs and DataFusion; it knows nothing about the network.

mod barrier;
mod bounded;
mod engine;
mod error;
mod guard;
mod limits;
mod memory;
mod patterns;
mod prune;
mod pushdown;
mod redact;
mod rewrite;
mod source;
mod yields;

pub use barrier::{BarrierExec, BarrierKind, SecurityBarrier};
pub use engine::{Engine, PlannedQuery, PreparedInfo, client_type};
pub use error::{Error, Result};
pub use guard::{StatementKind, check_statement};
pub use limits::{Limits, MAX_PLAN_DEPTH};
pub use rewrite::Touched;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
