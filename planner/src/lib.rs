//! bund-planner turns a principal's SQL into an executable plan, and is the only place where
//! security is applied: the statement check (`statement.rs`: read-only statements, the one
//! list of table functions), each principal's view of the catalog (`access/`: views planned,
//! grants and policies resolved), a session per principal over it, the secure-scan rewrite
//! (`rewrite.rs`) behind the barriers (`barrier.rs`), what may move below a barrier
//! (`below_barrier.rs`), what may run in a source (`in_source.rs`), what EXPLAIN
//! ANALYZE may show (`redact.rs`), and the limits of a statement (`limits.rs`, `bounded.rs`,
//! `patterns.rs`, `memory.rs`, `yields.rs`). Plan tests sit beside the rules (`tests.rs`,
//! `access/tests.rs`).
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
mod redact;
mod rewrite;
mod scope;
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
