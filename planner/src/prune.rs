//! Lets a Parquet scan under a row filter skip data by the user's moved predicates without
//! ever evaluating them on a row.
//!
//! `below_barrier.rs` moves the user's predicates that cannot fail below the security barrier,
//! but above the row filter's barrier (`barrier.rs`), so they run only on rows the row
//! filter kept. DataFusion gives a Parquet scan its predicate from the `FilterExec` right
//! above it, which is now the row filter alone; the moved predicates, one barrier higher,
//! would no longer prune row groups and pages. This physical rule adds them to the scan's
//! predicate for pruning only: with `parquet.pushdown_filters` off (Bund's setting), the
//! Parquet source evaluates its predicate against statistics, page indexes and bloom
//! filters, never against rows, and the `FilterExec`s above stay where they are. With
//! pushdown on, the reader would evaluate the predicate row by row before the row filter,
//! so the rule then does nothing.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;

use crate::barrier::{BarrierExec, BarrierKind};

#[derive(Debug, Default)]
pub(crate) struct PruneWithMovedPredicates;

impl PhysicalOptimizerRule for PruneWithMovedPredicates {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if config.execution.parquet.pushdown_filters {
            return Ok(plan);
        }
        plan.transform_down(|node| {
            let Some(barrier) = node.downcast_ref::<BarrierExec>() else {
                return Ok(Transformed::no(node));
            };
            if barrier.kind() != BarrierKind::Policy {
                return Ok(Transformed::no(node));
            }
            match with_moved(node.children()[0], Vec::new(), config)? {
                Some(child) => Ok(Transformed::yes(replace(&node, child)?)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "bund_prune_with_moved_predicates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Between the security barrier and the row filter's barrier: collects the predicates of
/// `FilterExec`s (by column name) and, below the row filter's barrier, hands them to the
/// scan. `None` when nothing changes.
fn with_moved(
    node: &Arc<dyn ExecutionPlan>,
    mut moved: Vec<Arc<dyn PhysicalExpr>>,
    config: &ConfigOptions,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(b) = node.downcast_ref::<BarrierExec>() {
        if b.kind() != BarrierKind::RowFilter || moved.is_empty() {
            return Ok(None);
        }
        return rebuild(node, |child| into_scan(child, &moved, config));
    }
    if let Some(f) = node.downcast_ref::<FilterExec>() {
        moved.push(Arc::clone(f.predicate()));
    } else if let Some(p) = node.downcast_ref::<ProjectionExec>() {
        // Predicates above a projection name its outputs: keep those whose columns pass
        // through it unchanged, under their input names.
        moved = moved
            .into_iter()
            .filter_map(|e| through_projection(e, p))
            .collect();
    } else if !(node.is::<RepartitionExec>()) {
        return Ok(None);
    }
    rebuild(node, |child| with_moved(child, moved, config))
}

/// Below the row filter's barrier: down through the row filter and plumbing to a scan.
fn into_scan(
    node: &Arc<dyn ExecutionPlan>,
    moved: &[Arc<dyn PhysicalExpr>],
    config: &ConfigOptions,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(scan) = node.downcast_ref::<DataSourceExec>() {
        let schema = node.schema();
        let Some(filters) = moved
            .iter()
            .map(|e| by_name(Arc::clone(e), &schema))
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(None);
        };
        let result = scan.data_source().try_pushdown_filters(filters, config)?;
        return Ok(result
            .updated_node
            .map(|source| Arc::new(scan.clone().with_data_source(source)) as _));
    }
    if node.is::<FilterExec>() || node.is::<RepartitionExec>() {
        return rebuild(node, |child| into_scan(child, moved, config));
    }
    Ok(None)
}

/// `node` with its single child replaced by what `f` makes of it, if anything.
fn rebuild(
    node: &Arc<dyn ExecutionPlan>,
    f: impl FnOnce(&Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>>,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let [child] = node.children()[..] else {
        return Ok(None);
    };
    match f(child)? {
        Some(new_child) => Ok(Some(replace(node, new_child)?)),
        None => Ok(None),
    }
}

fn replace(
    node: &Arc<dyn ExecutionPlan>,
    child: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    Arc::clone(node).replace_children(
        vec![child],
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )
}

/// `expr` over a projection's input instead of its output, when every column it reads (by
/// name: indices are fixed up against the scan) is a column of the input passed through,
/// perhaps renamed.
fn through_projection(
    expr: Arc<dyn PhysicalExpr>,
    projection: &ProjectionExec,
) -> Option<Arc<dyn PhysicalExpr>> {
    let exprs = projection.expr();
    let mut ok = true;
    let rewritten = expr
        .transform(|e| {
            if let Some(c) = e.downcast_ref::<Column>() {
                let passed = exprs
                    .iter()
                    .find(|p| p.alias == c.name())
                    .and_then(|p| p.expr.downcast_ref::<Column>().cloned());
                match passed {
                    Some(input) => return Ok(Transformed::yes(Arc::new(input) as _)),
                    None => ok = false,
                }
            }
            Ok(Transformed::no(e))
        })
        .ok()?
        .data;
    ok.then_some(rewritten)
}

/// `expr` with its columns looked up by name in `schema`.
fn by_name(
    expr: Arc<dyn PhysicalExpr>,
    schema: &datafusion::arrow::datatypes::SchemaRef,
) -> Option<Arc<dyn PhysicalExpr>> {
    let mut ok = true;
    let rewritten = expr
        .transform(|e| {
            if let Some(c) = e.downcast_ref::<Column>() {
                match schema.index_of(c.name()) {
                    Ok(i) => return Ok(Transformed::yes(Arc::new(Column::new(c.name(), i)) as _)),
                    Err(_) => ok = false,
                }
            }
            Ok(Transformed::no(e))
        })
        .ok()?
        .data;
    ok.then_some(rewritten)
}
