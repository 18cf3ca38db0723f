//! Moves the user's predicates that cannot fail below the security barrier, so that the
//! source can use them (Parquet statistics and page pruning now; remote SQL with
//! federation) without giving the user an oracle on hidden rows.
//!
//! The barrier exists so that a predicate is never evaluated on a row the row filter
//! removed: an expression that can raise (`1 / (CASE WHEN id_card = '…' THEN 0 …)`, a
//! failing CAST) would tell its author that a hidden row exists. A predicate that cannot
//! raise for any input value tells nothing by being evaluated, so it may run next to the
//! row filter. This rule moves a conjunct of a `Filter` directly above a barrier when
//!
//! - every column it names is an unmasked column of the dataset (the barrier passes the
//!   raw value through; a masked or denied column's value above the barrier is not the raw
//!   value, so the predicate would mean something else below it), and
//! - it is built only from columns, literals, comparisons, AND / OR / NOT, IS [NOT] NULL,
//!   IS [NOT] TRUE/FALSE/UNKNOWN, IN lists, BETWEEN, LIKE with a literal pattern, TRY_CAST
//!   and casts that cannot fail (widening numbers, between string types).
//!
//! Everything else — function calls, arithmetic, CASE, casts that can fail, subqueries,
//! parameters — stays above the barrier. Runs right after DataFusion's `PushDownFilter`,
//! which has by then moved the user's filters down to the barrier.
//!
//! Where the dataset has a row filter, the moved conjuncts go above its
//! [`BarrierKind::RowFilter`] barrier, so they are evaluated only on the rows the row filter
//! kept (the rule of the hostile-input work: no expression from the user's SQL is ever
//! evaluated on a row the row filter rejects), and the scan gets the row filter alone.
//! Anything of the user's in the scan would make the time of an empty answer depend on
//! the hidden rows: Parquet row groups and pages skipped by the user's predicates (a
//! household of another district, compared by value, read the row groups whose range spans
//! it: 247 ms against 19 ms for a value outside every range, on 10 M residents), or a
//! database that answers `WHERE <row filter> AND <user's predicate>` through an index on
//! the user's column, fetching the hidden rows that match it before the row filter drops
//! them (PostgreSQL, 2 M rows, an index on `bucket`: an officer counting another district's
//! bucket took 33.5 ms against 14.9 ms for a bucket that does not exist, both answers 0).
//! A database table's scan gets them marked, and sends them behind a fence: a subquery with
//! the row filter that the database evaluates on its own, filtered by them outside it
//! (`bund_catalogs`' `fence.rs`). Without a row filter the next pass of `PushDownFilter`
//! takes them on into the scan as before.

use std::sync::Arc;

use bund_catalogs::{RemoteTable, after_row_filter};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::utils::{conjunction, split_conjunction, split_conjunction_owned};
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, Filter, LogicalPlan, Operator, Projection,
    TableProviderFilterPushDown,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::barrier::{BarrierKind, SecurityBarrier};
use crate::in_source::strip_qualifiers;

#[derive(Debug, Default)]
pub(crate) struct PushSafePredicates;

impl OptimizerRule for PushSafePredicates {
    fn name(&self) -> &str {
        "bund_push_safe_predicates"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Filter(filter) = plan else {
            return Ok(Transformed::no(plan));
        };
        let barrier =
            SecurityBarrier::of(filter.input.as_ref()).filter(|b| b.kind == BarrierKind::Policy);
        let Some(barrier) = barrier else {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        };
        // What each output column of the barrier is below it: a raw column, or not.
        let raw_columns = passthrough_columns(&barrier.input);
        let mut below = Vec::new();
        let mut above = Vec::new();
        for conjunct in split_conjunction_owned(filter.predicate.clone()) {
            match translate(&conjunct, &raw_columns, barrier.input.schema()) {
                Some(expr) => below.push(expr),
                None => above.push(conjunct),
            }
        }
        let Some(moved) = conjunction(below) else {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        };
        let inner = push_under_masks(barrier.input.clone(), moved)?;
        let barrier = SecurityBarrier::wrap(&barrier.dataset, BarrierKind::Policy, inner);
        let plan = match conjunction(above) {
            Some(rest) => LogicalPlan::Filter(Filter::try_new(rest, Arc::new(barrier))?),
            None => barrier,
        };
        Ok(Transformed::yes(plan))
    }
}

/// For each output column of the barrier's input (by position): the column below the
/// masking projection it passes through unchanged, or `None` (masked, denied, computed).
fn passthrough_columns(input: &LogicalPlan) -> Vec<Option<Column>> {
    match input {
        LogicalPlan::Projection(p) => p
            .expr
            .iter()
            .map(|e| match e.clone().unalias_nested().data {
                Expr::Column(c) => Some(c),
                _ => None,
            })
            .collect(),
        other => other.schema().columns().into_iter().map(Some).collect(),
    }
}

/// `predicate` over the barrier's input instead of its output, when it may move there.
fn translate(predicate: &Expr, raw: &[Option<Column>], schema: &DFSchema) -> Option<Expr> {
    if !cannot_fail(predicate, schema) {
        return None;
    }
    let mut ok = true;
    let moved = predicate
        .clone()
        .transform(|e| {
            if let Expr::Column(c) = &e {
                match schema.maybe_index_of_column(c).and_then(|i| raw.get(i)) {
                    Some(Some(r)) => return Ok(Transformed::yes(Expr::Column(r.clone()))),
                    _ => ok = false,
                }
            }
            Ok(Transformed::no(e))
        })
        .ok()?
        .data;
    ok.then_some(moved)
}

/// `Projection(masks) ← input` becomes `Projection(masks) ← Filter(predicate) ← input`;
/// a barrier without a masking projection gets the filter directly below it. When `input`
/// is the row filter's barrier, the filter stays above it, and a database table's scan
/// gets a copy marked to be sent behind its fence (see the module's documentation).
fn push_under_masks(input: LogicalPlan, predicate: Expr) -> Result<LogicalPlan> {
    match input {
        LogicalPlan::Projection(p) => {
            let below = fence_into_database_scan(Arc::unwrap_or_clone(p.input), &predicate)?;
            let filtered = LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(below))?);
            Ok(LogicalPlan::Projection(Projection::try_new_with_schema(
                p.expr,
                Arc::new(filtered),
                p.schema,
            )?))
        }
        other => Ok(LogicalPlan::Filter(Filter::try_new(
            predicate,
            Arc::new(other),
        )?)),
    }
}

/// `RowFilterBarrier ← Filter(row filter)* ← TableScan` of a database table with the
/// conjuncts of `predicate` the database can take added to the scan's filters, each marked
/// [`bund_catalogs::after_row_filter`]: the source sends them behind a fence, after the
/// row filter (`bund_catalogs`' `fence.rs`), or not at all. Only where the whole row
/// filter is in the scan's SQL and the database evaluates it exactly: otherwise the fenced
/// subquery would let through rows the row filter hides, and the user's predicates would
/// run on them there. The predicate is still evaluated above the row filter's barrier.
/// Anything else is returned as it is.
fn fence_into_database_scan(plan: LogicalPlan, predicate: &Expr) -> Result<LogicalPlan> {
    fn into_scan(
        plan: LogicalPlan,
        conjuncts: &[Expr],
        row_filter: &mut Vec<Expr>,
    ) -> Result<LogicalPlan> {
        match plan {
            LogicalPlan::Filter(f) => {
                row_filter.extend(split_conjunction(&f.predicate).into_iter().cloned());
                let input = into_scan(Arc::unwrap_or_clone(f.input), conjuncts, row_filter)?;
                Ok(LogicalPlan::Filter(Filter::try_new(
                    f.predicate,
                    Arc::new(input),
                )?))
            }
            LogicalPlan::TableScan(mut scan) => {
                let provider = source_as_provider(&scan.source)?;
                let Some(table) = provider.downcast_ref::<RemoteTable>() else {
                    return Ok(LogicalPlan::TableScan(scan));
                };
                let sent: Vec<Expr> = scan.filters.iter().map(strip_qualifiers).collect();
                let row_filter_sent = !row_filter.is_empty()
                    && row_filter
                        .iter()
                        .all(|c| table.filter_is_exact(c) && sent.contains(&strip_qualifiers(c)));
                if !row_filter_sent {
                    return Ok(LogicalPlan::TableScan(scan));
                }
                let marked: Vec<Expr> = conjuncts
                    .iter()
                    .map(|c| after_row_filter(c.clone()))
                    .collect();
                let refs: Vec<&Expr> = marked.iter().collect();
                let support = provider.supports_filters_pushdown(&refs)?;
                for (m, s) in marked.into_iter().zip(support) {
                    if s != TableProviderFilterPushDown::Unsupported && !scan.filters.contains(&m) {
                        scan.filters.push(m);
                    }
                }
                Ok(LogicalPlan::TableScan(scan))
            }
            other => Ok(other),
        }
    }
    let Some(barrier) = SecurityBarrier::of(&plan).filter(|b| b.kind == BarrierKind::RowFilter)
    else {
        return Ok(plan);
    };
    let conjuncts = split_conjunction_owned(predicate.clone());
    let inner = into_scan(barrier.input.clone(), &conjuncts, &mut Vec::new())?;
    Ok(SecurityBarrier::wrap(
        &barrier.dataset,
        BarrierKind::RowFilter,
        inner,
    ))
}

/// True when evaluating `expr` over rows of `schema` cannot raise an error for any row.
fn cannot_fail(expr: &Expr, schema: &DFSchema) -> bool {
    let ok = |e: &Expr| cannot_fail(e, schema);
    match expr {
        Expr::Column(_) | Expr::Literal(..) => true,
        Expr::Alias(a) => ok(&a.expr),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            matches!(
                op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::And
                    | Operator::Or
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
            ) && ok(left)
                && ok(right)
        }
        Expr::Not(e)
        | Expr::IsNull(e)
        | Expr::IsNotNull(e)
        | Expr::IsTrue(e)
        | Expr::IsFalse(e)
        | Expr::IsUnknown(e)
        | Expr::IsNotTrue(e)
        | Expr::IsNotFalse(e)
        | Expr::IsNotUnknown(e) => ok(e),
        Expr::Between(b) => ok(&b.expr) && ok(&b.low) && ok(&b.high),
        Expr::InList(l) => ok(&l.expr) && l.list.iter().all(ok),
        // A pattern is compiled when the predicate first runs; one that cannot be (too
        // large for the regular-expression engine) fails on any row that reaches it.
        Expr::Like(l) => {
            l.escape_char.is_none()
                && matches!(l.pattern.as_ref(), Expr::Literal(v, _) if crate::patterns::like_compiles(v, l.case_insensitive).is_ok())
                && ok(&l.expr)
        }
        Expr::TryCast(c) => ok(&c.expr),
        // Casts of literals were folded by the simplifier where they succeed; one left is
        // suspect. Casts of columns are judged by their types.
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Column(_) => c
                .expr
                .get_type(schema)
                .is_ok_and(|from| cast_cannot_fail(&from, c.field.data_type())),
            _ => false,
        },
        _ => false,
    }
}

/// Casts that succeed for every value of `from`: widening numbers, a number, boolean or
/// date to text, between the string types, Date32 to Date64, and decimals to a decimal
/// with at least as many integer and fraction digits.
fn cast_cannot_fail(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let text = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let rank_signed = |t: &DataType| match t {
        Int8 => Some(1),
        Int16 => Some(2),
        Int32 => Some(3),
        Int64 => Some(4),
        _ => None,
    };
    let rank_unsigned = |t: &DataType| match t {
        UInt8 => Some(1),
        UInt16 => Some(2),
        UInt32 => Some(3),
        UInt64 => Some(4),
        _ => None,
    };
    if from == to || (text(from) && text(to)) {
        return true;
    }
    if text(to) {
        return from.is_numeric() || matches!(from, Boolean | Date32 | Date64);
    }
    match (from, to) {
        (_, Float64) => from.is_integer() || matches!(from, Float16 | Float32),
        (_, Float32) => matches!(from, Int8 | Int16 | UInt8 | UInt16 | Float16),
        (Date32, Date64) => true,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s2 >= s1 && i16::from(*p2) - i16::from(*s2) >= i16::from(*p1) - i16::from(*s1)
        }
        _ => match (rank_signed(to), rank_signed(from), rank_unsigned(from)) {
            (Some(t), Some(f), _) => t >= f,
            // an unsigned value fits a signed type with more bits
            (Some(t), None, Some(f)) => t > f,
            _ => matches!((rank_unsigned(from), rank_unsigned(to)), (Some(f), Some(t)) if t >= f),
        },
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::{cast, col, lit, try_cast};

    use super::*;

    fn schema() -> DFSchema {
        DFSchema::try_from(Schema::new(vec![
            Field::new("code", DataType::Utf8, true),
            Field::new("n", DataType::Int32, true),
            Field::new("blob", DataType::Binary, true),
            Field::new("d", DataType::Decimal128(10, 2), true),
        ]))
        .unwrap()
    }

    #[test]
    fn comparisons_of_columns_with_literals_cannot_fail() {
        let s = schema();
        for e in [
            col("code").eq(lit("310115")),
            col("n").gt_eq(lit(3)).and(col("code").is_not_null()),
            col("code").in_list(vec![lit("a"), lit("b")], true),
            col("n").between(lit(1), lit(9)).or(col("n").is_null()),
            col("code").like(lit("31%")),
            cast(col("n"), DataType::Int64).lt(lit(5_i64)),
            cast(col("n"), DataType::Utf8).eq(lit("5")),
            try_cast(col("code"), DataType::Int32).eq(lit(5)),
            cast(col("d"), DataType::Decimal128(20, 4)).gt(lit(0)),
        ] {
            assert!(cannot_fail(&e, &s), "{e}");
        }
    }

    #[test]
    fn anything_that_can_raise_stays_above() {
        let s = schema();
        for e in [
            (lit(1) / col("n")).eq(lit(1)),
            (col("n") + lit(1)).gt(lit(0)),
            cast(col("code"), DataType::Int32).eq(lit(5)),
            cast(col("blob"), DataType::Utf8).eq(lit("x")),
            cast(col("n"), DataType::Int8).eq(lit(5_i8)),
            cast(col("d"), DataType::Decimal128(5, 2)).gt(lit(0)),
            cast(lit("x"), DataType::Int32).eq(col("n")),
            datafusion::functions::expr_fn::length(col("code")).gt(lit(3)),
        ] {
            assert!(!cannot_fail(&e, &s), "{e}");
        }
    }
}
