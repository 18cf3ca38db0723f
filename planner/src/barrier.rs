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
//!
//! A dataset with a row filter has a second barrier of the same kind right above the row
//! filter ([`BarrierKind::RowFilter`]): the row filter runs first and alone, and what the
//! optimizer moved below the outer barrier (`below_barrier.rs`) runs above it, on the rows the
//! filter kept. Without it DataFusion merges adjacent filters into one `FilterExec`, where
//! `AND` evaluates its right side over the whole batch whenever any row passes the left
//! side: a moved predicate would run on hidden rows, and one that can fail (a `LIKE`
//! pattern too large to compile) would tell its author that such a row exists.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchemaRef, DataFusionError, Result, Statistics, internal_err};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;

/// Where a barrier stands in a protected dataset's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum BarrierKind {
    /// Above the masks: the user's query sees only this node's output.
    Policy,
    /// Above the row filter: nothing moved below the [`BarrierKind::Policy`] barrier is
    /// evaluated on a row the filter removed.
    RowFilter,
}

/// The logical barrier above one scan of a protected dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct SecurityBarrier {
    /// `schema.name` of the dataset, for EXPLAIN and the audit log.
    pub dataset: String,
    pub kind: BarrierKind,
    pub input: LogicalPlan,
}

impl SecurityBarrier {
    /// The barrier a plan node is, if it is one.
    pub fn of(plan: &LogicalPlan) -> Option<&Self> {
        match plan {
            LogicalPlan::Extension(e) => e.node.as_any().downcast_ref::<Self>(),
            _ => None,
        }
    }

    /// `input` under a new barrier, as a plan node.
    pub fn wrap(dataset: &str, kind: BarrierKind, input: LogicalPlan) -> LogicalPlan {
        LogicalPlan::Extension(datafusion::logical_expr::Extension {
            node: Arc::new(Self {
                dataset: dataset.to_string(),
                kind,
                input,
            }),
        })
    }
}

impl UserDefinedLogicalNodeCore for SecurityBarrier {
    fn name(&self) -> &str {
        match self.kind {
            BarrierKind::Policy => "SecurityBarrier",
            BarrierKind::RowFilter => "RowFilterBarrier",
        }
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
        let name = UserDefinedLogicalNodeCore::name(self);
        write!(f, "{name}: {}", self.dataset)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        match <[LogicalPlan; 1]>::try_from(inputs) {
            Ok([input]) => Ok(Self {
                dataset: self.dataset.clone(),
                kind: self.kind,
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
    /// (Not through the row filter's barrier: a limit below it would cut raw rows.)
    fn supports_limit_pushdown(&self) -> bool {
        self.kind == BarrierKind::Policy
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
                barrier.kind,
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
    kind: BarrierKind,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl BarrierExec {
    pub fn new(dataset: String, kind: BarrierKind, input: Arc<dyn ExecutionPlan>) -> Self {
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
            kind,
            input,
            properties: Arc::new(properties),
        }
    }

    /// `schema.name` of the dataset this barrier protects.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    pub fn kind(&self) -> BarrierKind {
        self.kind
    }
}

impl DisplayAs for BarrierExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.name(), self.dataset)
    }
}

impl ExecutionPlan for BarrierExec {
    fn name(&self) -> &str {
        match self.kind {
            BarrierKind::Policy => "BarrierExec",
            BarrierKind::RowFilter => "RowFilterBarrierExec",
        }
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
            Ok([input]) => Ok(Arc::new(Self::new(self.dataset.clone(), self.kind, input))),
            Err(_) => internal_err!("BarrierExec takes one input"),
        }
    }

    /// The input's batches; an error raised below the barrier reaches the user only as its
    /// kind (a source that failed, memory), never with its text, which may quote a raw
    /// value of a row the principal may not see (a failed conversion, a failed mask).
    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = self.input.execute(partition, context)?;
        if self.kind == BarrierKind::RowFilter {
            return Ok(stream);
        }
        let dataset = self.dataset.clone();
        let schema = stream.schema();
        let guarded = stream.map(move |r| r.map_err(|e| withhold(&dataset, e)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, guarded)))
    }

    /// Unknown, always: a protected dataset's row count or bounds must not answer a query.
    fn partition_statistics(&self, _partition: Option<usize>) -> Result<Arc<Statistics>> {
        Ok(Arc::new(Statistics::new_unknown(&self.schema())))
    }
}

/// What of an error raised below a barrier may cross it: a data source's failure keeps its
/// source and kind (the client is told to retry, or that the source timed out), running out
/// of memory stays that; anything else becomes a message without the original text, which
/// is logged for the operator.
fn withhold(dataset: &str, e: DataFusionError) -> DataFusionError {
    if let Some(source) = bund_catalogs::source_error(&e) {
        if source.kind == bund_catalogs::SourceErrorKind::Remote {
            tracing::warn!(dataset, error = %e, "a data source failed below a security barrier");
            return bund_catalogs::SourceError {
                source: source.source.clone(),
                kind: source.kind,
                message: format!(
                    "a row of {dataset} could not be read (the server log has the details)"
                ),
            }
            .into();
        }
        return e;
    }
    if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) {
        return e;
    }
    tracing::warn!(dataset, error = %e, "an error was raised below a security barrier");
    DataFusionError::Execution(format!(
        "the security policy of {dataset} could not be applied to a row (the server log has the details)"
    ))
}
