//! Work that runs in the bureau's database: an `Aggregate` directly above one scan of a
//! database table becomes one `SELECT … GROUP BY …` there, an inner equi-join of two scans
//! of the same database one `SELECT … JOIN …`, and a top-n (`ORDER BY … LIMIT n`) one
//! `SELECT … ORDER BY … LIMIT n`, when doing so cannot change the answer or show more than
//! the policy lets through.
//!
//! The security barrier stays the boundary. The rule looks through it only when
//!
//! - every column the aggregate, join or top-n reads, and every column the join or top-n
//!   outputs, reaches the barrier as the raw column (a masked, denied or computed column
//!   does not: such work stays in Bund, over masked values), and
//! - every filter between the work and the scan — the policy's row filter and the
//!   user's predicates that moved below the barrier — is one the database evaluates
//!   exactly (see `RemoteTable::filter_is_exact`) and is already in the scan's SQL.
//!
//! Then the rows the database aggregates are exactly the rows the policy lets the
//! principal see, and the values are raw only where the policy shows them raw. Which
//! aggregates and types may run there is decided by the source (`RemoteTable::aggregate`):
//! COUNT, SUM, MIN and MAX over types both sides treat alike; never a function call, so no
//! mask or policy-only function reaches the database.

use std::sync::Arc;

use bund_catalogs::{AggregateFn, JoinSide, RemoteAggregate, RemoteTable, inner_join};
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::NullEquality;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result, TableReference};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Aggregate, Expr, Join, JoinType, LogicalPlan, LogicalPlanBuilder, Sort, TableScan,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::barrier::SecurityBarrier;

#[derive(Debug, Default)]
pub(crate) struct PushToSource;

impl OptimizerRule for PushToSource {
    fn name(&self) -> &str {
        "bund_push_to_source"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let pushed = match &plan {
            LogicalPlan::Aggregate(agg) => remote_aggregate(agg)?,
            LogicalPlan::Join(join) => remote_join(join)?,
            LogicalPlan::Sort(sort) => remote_top(sort)?,
            _ => None,
        };
        match pushed {
            Some(pushed) => Ok(Transformed::yes(pushed)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// The scan below an aggregate's input and the filters on the way, when the way down has
/// only column renames, the barrier and filters the scan already sends.
struct Base<'a> {
    scan: &'a TableScan,
    provider: Arc<dyn TableProvider>,
}

impl Base<'_> {
    fn table(&self) -> &RemoteTable {
        self.provider
            .downcast_ref::<RemoteTable>()
            .expect("checked in base()")
    }
}

fn remote_aggregate(agg: &Aggregate) -> Result<Option<LogicalPlan>> {
    let Some(base) = base(&agg.input) else {
        return Ok(None);
    };
    if agg
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Ok(None);
    }
    let mut group_by = Vec::with_capacity(agg.group_expr.len());
    for e in &agg.group_expr {
        let Expr::Column(c) = e else {
            return Ok(None);
        };
        let Some(name) = trace(&agg.input, c) else {
            return Ok(None);
        };
        group_by.push(name);
    }
    let mut aggregates = Vec::with_capacity(agg.aggr_expr.len());
    for e in &agg.aggr_expr {
        let Expr::AggregateFunction(AggregateFunction { func, params }) = unalias(e) else {
            return Ok(None);
        };
        if params.distinct
            || params.filter.is_some()
            || !params.order_by.is_empty()
            || params.null_treatment.is_some()
        {
            return Ok(None);
        }
        let (f, column) = match (func.name(), params.args.as_slice()) {
            ("count", [Expr::Literal(v, _)]) if !v.is_null() => (AggregateFn::CountRows, None),
            ("count", [Expr::Column(c)]) => (AggregateFn::Count, Some(c)),
            ("sum", [Expr::Column(c)]) => (AggregateFn::Sum, Some(c)),
            // DataFusion sums smaller integers as Int64: the database sums them exactly too
            ("sum", [Expr::Cast(cast)]) if cast.field.data_type() == &DataType::Int64 => {
                match cast.expr.as_ref() {
                    Expr::Column(c) => (AggregateFn::Sum, Some(c)),
                    _ => return Ok(None),
                }
            }
            ("min", [Expr::Column(c)]) => (AggregateFn::Min, Some(c)),
            ("max", [Expr::Column(c)]) => (AggregateFn::Max, Some(c)),
            _ => return Ok(None),
        };
        let column = match column {
            Some(c) => match trace(&agg.input, c) {
                Some(name) => Some(name),
                None => return Ok(None),
            },
            None => None,
        };
        aggregates.push(RemoteAggregate { func: f, column });
    }
    let output: Vec<_> = agg
        .schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let Some(query) =
        base.table()
            .aggregate(&base.scan.filters, &group_by, &aggregates, &output)?
    else {
        return Ok(None);
    };
    let name = format!("{}_aggregate", base.scan.table_name.table());
    replacement(&name, query, &agg.schema).map(Some)
}

/// A scan of the pushed query under a projection that gives its columns `c0`, `c1`, … the
/// names (and qualifiers) of the plan node it replaces.
fn replacement(
    name: &str,
    query: bund_catalogs::RemoteQuery,
    schema: &datafusion::common::DFSchema,
) -> Result<LogicalPlan> {
    let scan = LogicalPlanBuilder::scan(
        TableReference::bare(name),
        provider_as_source(Arc::new(query)),
        None,
    )?;
    let exprs = schema
        .iter()
        .enumerate()
        .map(|(i, (q, f))| {
            Expr::Column(Column::new_unqualified(format!("c{i}")))
                .alias_qualified(q.cloned(), f.name())
        })
        .collect::<Vec<_>>();
    scan.project(exprs)?.build()
}

/// `ORDER BY … LIMIT n` over one database scan: the database sends its first `n` rows in
/// that order; Bund's top-n stays above (over at most `n` rows).
fn remote_top(sort: &Sort) -> Result<Option<LogicalPlan>> {
    let Some(n) = sort.fetch else {
        return Ok(None);
    };
    let Some(base) = base(&sort.input) else {
        return Ok(None);
    };
    let mut order = Vec::with_capacity(sort.expr.len());
    for e in &sort.expr {
        let Expr::Column(c) = &e.expr else {
            return Ok(None);
        };
        let Some(name) = trace(&sort.input, c) else {
            return Ok(None);
        };
        order.push((name, e.asc, e.nulls_first));
    }
    let schema = sort.input.schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (q, f) in schema.iter() {
        let Some(name) = trace(&sort.input, &Column::new(q.cloned(), f.name())) else {
            return Ok(None);
        };
        columns.push((name, f.as_ref().clone()));
    }
    let Some(query) = base.table().top(&base.scan.filters, &columns, &order, n)? else {
        return Ok(None);
    };
    let name = format!("{}_top", base.scan.table_name.table());
    let input = replacement(&name, query, schema)?;
    Ok(Some(LogicalPlan::Sort(Sort {
        expr: sort.expr.clone(),
        input: Arc::new(input),
        fetch: sort.fetch,
    })))
}

fn remote_join(join: &Join) -> Result<Option<LogicalPlan>> {
    if join.join_type != JoinType::Inner
        || join.filter.is_some()
        || join.null_equality != NullEquality::NullEqualsNothing
    {
        return Ok(None);
    }
    let (Some(left), Some(right)) = (base(&join.left), base(&join.right)) else {
        return Ok(None);
    };
    if !left.table().same_database(right.table()) {
        return Ok(None);
    }
    let mut on = Vec::with_capacity(join.on.len());
    for (a, b) in &join.on {
        let (Expr::Column(a), Expr::Column(b)) = (a, b) else {
            return Ok(None);
        };
        let (Some(a), Some(b)) = (trace(&join.left, a), trace(&join.right, b)) else {
            return Ok(None);
        };
        on.push((a, b));
    }
    let mut output = Vec::with_capacity(join.schema.fields().len());
    for (q, f) in join.schema.iter() {
        let c = Column::new(q.cloned(), f.name());
        let (side, input) = if join.left.schema().has_column(&c) {
            (0, &join.left)
        } else {
            (1, &join.right)
        };
        let Some(name) = trace(input, &c) else {
            return Ok(None);
        };
        output.push((side, name, f.as_ref().clone()));
    }
    let sides = (
        JoinSide {
            table: left.table(),
            filters: &left.scan.filters,
        },
        JoinSide {
            table: right.table(),
            filters: &right.scan.filters,
        },
    );
    let Some(query) = inner_join(sides.0, sides.1, &on, &output)? else {
        return Ok(None);
    };
    let name = format!(
        "{}_join_{}",
        left.scan.table_name.table(),
        right.scan.table_name.table()
    );
    replacement(&name, query, &join.schema).map(Some)
}

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

/// Walks down from an aggregate's input to a database table's scan through renaming
/// projections, subquery aliases, the security barrier and filters whose every conjunct
/// the scan sends exactly. A fetch (LIMIT) on the way or on the scan stops it.
fn base(plan: &LogicalPlan) -> Option<Base<'_>> {
    match plan {
        LogicalPlan::Projection(p) => base(&p.input),
        LogicalPlan::SubqueryAlias(a) => base(&a.input),
        LogicalPlan::Extension(e) if e.node.as_any().is::<SecurityBarrier>() => {
            base(e.node.inputs()[0])
        }
        LogicalPlan::Filter(f) => {
            let b = base(&f.input)?;
            let sent: Vec<Expr> = b.scan.filters.iter().map(strip_qualifiers).collect();
            // The same text is the same filter only where its columns are the raw columns
            // (above a mask projection, `id_card = '…'` compares masked values).
            let raw = |c: &Expr| {
                c.column_refs()
                    .into_iter()
                    .all(|col| trace(&f.input, col).is_some_and(|name| name == col.name))
            };
            split_conjunction(&f.predicate)
                .into_iter()
                .all(|c| raw(c) && sent.contains(&strip_qualifiers(c)))
                .then_some(b)
        }
        LogicalPlan::TableScan(scan) if scan.fetch.is_none() => {
            let provider = source_as_provider(&scan.source).ok()?;
            let table = provider.downcast_ref::<RemoteTable>()?;
            scan.filters
                .iter()
                .all(|f| table.filter_is_exact(f))
                .then_some(Base { scan, provider })
        }
        _ => None,
    }
}

/// The name, in the scan's table, of the raw column that reaches `plan`'s output column
/// `c` unchanged; `None` when it is computed on the way (a mask, a constant, anything).
fn trace(plan: &LogicalPlan, c: &Column) -> Option<String> {
    match plan {
        LogicalPlan::Projection(p) => {
            let i = p.schema.index_of_column(c).ok()?;
            match unalias(&p.expr[i]) {
                Expr::Column(inner) => trace(&p.input, inner),
                _ => None,
            }
        }
        LogicalPlan::SubqueryAlias(a) => {
            let i = a.schema.index_of_column(c).ok()?;
            let (q, f) = a.input.schema().qualified_field(i);
            trace(&a.input, &Column::new(q.cloned(), f.name()))
        }
        LogicalPlan::Extension(e) if e.node.as_any().is::<SecurityBarrier>() => {
            trace(e.node.inputs()[0], c)
        }
        LogicalPlan::Filter(f) => trace(&f.input, c),
        LogicalPlan::TableScan(scan) => {
            let i = scan.projected_schema.index_of_column(c).ok()?;
            Some(scan.projected_schema.field(i).name().clone())
        }
        _ => None,
    }
}

/// A filter with its columns' qualifiers removed, to compare a `Filter`'s conjunct with
/// the copy `PushDownFilter` gave the scan (here and in `below_barrier.rs`).
pub(crate) fn strip_qualifiers(e: &Expr) -> Expr {
    e.clone()
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| e.clone())
}
