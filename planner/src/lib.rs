//! bund-planner turns a principal's SQL into an executable plan: the statement guard
//! (read-only statements only), a session per principal over the shared catalog, table
//! resolution with the same NotFound for every invisible name, parameter binding, and the
//! client-facing output schema (no view types, which some Flight SQL clients cannot read).
//!
//! It may import bund-catalogs, bund-udfs and DataFusion; it knows nothing about the network.

mod access;
mod barrier;
mod below_barrier;
mod bounded;
mod engine;
mod error;
mod in_source;
mod limits;
mod memory;
mod patterns;
mod prune;
mod redact;
mod rewrite;
mod statement;
mod yields;

pub use access::{Access, DEFAULT_MASK_ORDER, ScanPolicy, VisibleDataset};
pub use barrier::{BarrierExec, BarrierKind, SecurityBarrier};
pub use engine::{Engine, PlannedQuery, PreparedInfo, client_type};
pub use error::{Error, Result};
pub use limits::{Limits, MAX_PLAN_DEPTH, PlannerSettings};
pub use rewrite::Touched;
pub use statement::{StatementKind, check_statement};

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
