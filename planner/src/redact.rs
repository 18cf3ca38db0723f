//! `EXPLAIN ANALYZE` without the metrics a principal may not see.
//!
//! The metrics of an operator under a security barrier count rows the row filter has not yet
//! removed: the scan's `output_rows` under `pudong_police`'s barrier is the city's resident
//! count, and the row filter's selectivity says how many residents live elsewhere. The plan
//! is run as it is; only what is shown changes: every operator at or below a barrier shows
//! no metrics, and where the statement reads a dataset through a topic library or open
//! dataset that the principal may not query directly (definer rights), no operator does —
//! the views' insides are not the principal's to measure. The operators above every barrier
//! show theirs: they count only rows the principal sees.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::analyze::AnalyzeExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

use crate::barrier::{BarrierExec, BarrierKind};

/// What an `EXPLAIN ANALYZE` may show of its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Show {
    /// Every operator's metrics except at and below barriers.
    AboveBarriers,
    /// No operator's metrics.
    Nothing,
}

/// `plan` with its metrics withheld as `show` says, when it is an `EXPLAIN ANALYZE`.
pub(crate) fn redact(plan: Arc<dyn ExecutionPlan>, show: Show) -> Result<Arc<dyn ExecutionPlan>> {
    if !plan.is::<AnalyzeExec>() {
        return Ok(plan);
    }
    let [input] = plan.children()[..] else {
        return internal_err!("AnalyzeExec has one input");
    };
    let input = match show {
        Show::Nothing => Withheld::wrap(Arc::clone(input), true),
        Show::AboveBarriers => above_barriers(input),
    };
    plan.replace_children(
        vec![input],
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
    )
}

/// Wraps every policy barrier (and everything below it) of `plan` so that it shows no
/// metrics; the nodes above stay as they are, with wrapped children where needed.
fn above_barriers(plan: &Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    if plan
        .downcast_ref::<BarrierExec>()
        .is_some_and(|b| b.kind() == BarrierKind::Policy)
    {
        return Withheld::wrap(Arc::clone(plan), true);
    }
    let children: Vec<Arc<dyn ExecutionPlan>> =
        plan.children().into_iter().map(above_barriers).collect();
    if children.is_empty() {
        return Arc::clone(plan);
    }
    Arc::new(Shown {
        inner: Arc::clone(plan),
        children,
    })
}

/// A node shown with its own metrics and its (partly withheld) children; runs as `inner`.
#[derive(Debug)]
struct Shown {
    inner: Arc<dyn ExecutionPlan>,
    children: Vec<Arc<dyn ExecutionPlan>>,
}

/// A node shown without metrics, and so are the nodes below it; runs as `inner`.
#[derive(Debug)]
struct Withheld {
    inner: Arc<dyn ExecutionPlan>,
    children: Vec<Arc<dyn ExecutionPlan>>,
    /// The highest withheld node says why.
    top: bool,
}

impl Withheld {
    fn wrap(inner: Arc<dyn ExecutionPlan>, top: bool) -> Arc<dyn ExecutionPlan> {
        let children = inner
            .children()
            .into_iter()
            .map(|c| Self::wrap(Arc::clone(c), false))
            .collect();
        Arc::new(Self {
            inner,
            children,
            top,
        })
    }
}

impl DisplayAs for Shown {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_as(t, f)
    }
}

impl DisplayAs for Withheld {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_as(t, f)?;
        if self.top {
            write!(
                f,
                " (metrics withheld here and below: they would count rows the security policy hides)"
            )?;
        }
        Ok(())
    }
}

/// The parts of `ExecutionPlan` both wrappers share: they run their inner node unchanged.
macro_rules! delegate {
    ($t:ty, $metrics:expr) => {
        impl ExecutionPlan for $t {
            fn name(&self) -> &str {
                self.inner.name()
            }

            fn properties(&self) -> &Arc<PlanProperties> {
                self.inner.properties()
            }

            fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
                self.children.iter().collect()
            }

            fn apply_expressions(
                &self,
                f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
            ) -> Result<TreeNodeRecursion> {
                self.inner.apply_expressions(f)
            }

            #[allow(deprecated)]
            fn with_new_children(
                self: Arc<Self>,
                _children: Vec<Arc<dyn ExecutionPlan>>,
            ) -> Result<Arc<dyn ExecutionPlan>> {
                internal_err!("a plan shown by EXPLAIN ANALYZE is not optimised again")
            }

            fn execute(
                &self,
                partition: usize,
                context: Arc<TaskContext>,
            ) -> Result<SendableRecordBatchStream> {
                self.inner.execute(partition, context)
            }

            fn metrics(&self) -> Option<MetricsSet> {
                let metrics: fn(&Self) -> Option<MetricsSet> = $metrics;
                metrics(self)
            }

            fn partition_statistics(&self, _partition: Option<usize>) -> Result<Arc<Statistics>> {
                Ok(Arc::new(Statistics::new_unknown(&self.schema())))
            }
        }
    };
}

delegate!(Shown, |s| s.inner.metrics());
delegate!(Withheld, |_| None);
