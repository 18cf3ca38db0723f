//! The security barrier: a plan node between a protected dataset's policy (row filter, then
//! masks) and the user's query. DataFusion's optimizer moves filters, projections and
//! limits through ordinary nodes; it moves none of the user's predicates through this one,
//! so they are evaluated only on rows the row filter kept, and only on masked values.
//!
//! Logically it is an extension node: `PushDownFilter` keeps every predicate that names
//! one of its columns above it (the default of `prevent_predicate_push_down_columns`), and
//! it tells `OptimizeProjections` which columns it needs so that unread columns are neither
//! masked nor read. Physically it is [`BarrierExec`], which passes batches through and
//! refuses the rest: its statistics are unknown (COUNT/MIN/MAX are never answered from the
//! source's metadata), parent filters — including dynamic filters of joins and TopK — are
//! not pushed into it, and it claims no ordering, so sorts are not pushed below it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchemaRef, Result, Statistics, internal_err};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

/// The logical barrier above one scan of a protected dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct SecurityBarrier {
    /// `schema.name` of the dataset, for EXPLAIN and the audit log.
    pub dataset: String,
    pub input: LogicalPlan,
}

impl UserDefinedLogicalNodeCore for SecurityBarrier {
    fn name(&self) -> &str {
        "SecurityBarrier"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SecurityBarrier: {}", self.dataset)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        match <[LogicalPlan; 1]>::try_from(inputs) {
            Ok([input]) => Ok(Self {
                dataset: self.dataset.clone(),
                input,
            }),
            Err(_) => internal_err!("SecurityBarrier takes one input"),
        }
    }

    /// Output column i is input column i: only the columns read above are needed below.
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        Some(vec![output_columns.to_vec()])
    }

    /// A limit cannot tell anything about hidden rows: it applies after the row filter.
    fn supports_limit_pushdown(&self) -> bool {
        true
    }
}

/// Plans [`SecurityBarrier`] nodes as [`BarrierExec`].
#[derive(Debug, Default)]
pub(crate) struct BarrierPlanner;

#[async_trait]
impl ExtensionPlanner for BarrierPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(barrier) = node.as_any().downcast_ref::<SecurityBarrier>() else {
            return Ok(None);
        };
        match physical_inputs {
            [input] => Ok(Some(Arc::new(BarrierExec::new(
                barrier.dataset.clone(),
                Arc::clone(input),
            )))),
            _ => internal_err!("SecurityBarrier takes one input"),
        }
    }
}

/// DataFusion's physical planner with the barrier added.
#[derive(Debug, Default)]
pub(crate) struct BundQueryPlanner;

#[async_trait]
impl QueryPlanner for BundQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(BarrierPlanner)])
            .create_physical_plan(logical_plan, session)
            .await
    }
}

/// Passes its input's batches through; see the module documentation for what it refuses.
#[derive(Debug)]
pub struct BarrierExec {
    dataset: String,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl BarrierExec {
    pub fn new(dataset: String, input: Arc<dyn ExecutionPlan>) -> Self {
        let p = input.properties();
        let properties = PlanProperties::new(
            // No ordering, no constants, no equivalences: nothing the optimizer could use
            // to move work across the barrier.
            EquivalenceProperties::new(input.schema()),
            p.output_partitioning().clone(),
            p.emission_type,
            p.boundedness,
        );
        Self {
            dataset,
            input,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for BarrierExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "BarrierExec: {}", self.dataset)
    }
}

impl ExecutionPlan for BarrierExec {
    fn name(&self) -> &str {
        "BarrierExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match <[Arc<dyn ExecutionPlan>; 1]>::try_from(children) {
            Ok([input]) => Ok(Arc::new(Self::new(self.dataset.clone(), input))),
            Err(_) => internal_err!("BarrierExec takes one input"),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    /// Unknown, always: a protected dataset's row count or bounds must not answer a query.
    fn partition_statistics(&self, _partition: Option<usize>) -> Result<Arc<Statistics>> {
        Ok(Arc::new(Statistics::new_unknown(&self.schema())))
    }
}
