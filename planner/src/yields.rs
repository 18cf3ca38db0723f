//! Every operator that can produce many batches for one batch it reads gives its thread back
//! between them.
//!
//! DataFusion's `EnsureCooperative` makes scans and exchanges spend tokio's task budget, so
//! a query returns to its runtime now and then and can be cancelled there. A join produces
//! batches from what it holds in memory: a cross join of three 20,000-row tables for
//! `count(*)` asks its input for three batches and then produces 400 million rows without
//! once giving the thread back. Its task could then not be stopped at its deadline, its
//! thread served nothing else, and two such anonymous queries held every query thread for
//! good. Wrapping such operators in `CooperativeExec` spends budget per batch they produce:
//! past the budget the task yields, and a deadline or a cancellation stops it there.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;

/// Operators whose output is not bounded by the batches they read.
const MULTIPLYING: &[&str] = &[
    "CrossJoinExec",
    "NestedLoopJoinExec",
    "HashJoinExec",
    "SortMergeJoinExec",
    "SymmetricHashJoinExec",
    "PiecewiseMergeJoinExec",
    "UnnestExec",
    "RecursiveQueryExec",
];

#[derive(Debug, Default)]
pub(crate) struct YieldBetweenBatches;

impl PhysicalOptimizerRule for YieldBetweenBatches {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if MULTIPLYING.contains(&node.name()) {
                Ok(Transformed::yes(Arc::new(CooperativeExec::new(node)) as _))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "bund_yield_between_batches"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
