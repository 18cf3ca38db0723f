//! Patterns are checked while planning. A `LIKE`, `SIMILAR TO` or regular-expression
//! pattern is compiled when the predicate first runs over a batch, and one that cannot be
//! compiled (20,000 `_` exceed the regular-expression engine's size limit) fails the query
//! only if a row reaches it. Refusing such a literal pattern before anything runs makes the
//! outcome of a statement independent of the rows it reads.

use datafusion::arrow::array::{Scalar, StringArray};
use datafusion::arrow::compute::kernels::comparison::{ilike, like};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};

/// Functions whose second argument is a regular expression.
const REGEX_FUNCTIONS: &[&str] = &[
    "regexp_like",
    "regexp_match",
    "regexp_replace",
    "regexp_count",
    "regexp_instr",
    "regexp_substr",
];

/// The text of a string literal; `None` for NULL and anything else.
fn text(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s),
        _ => None,
    }
}

/// The literal an expression is, through casts the planner added.
fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        Expr::Cast(c) => literal(&c.expr),
        Expr::TryCast(c) => literal(&c.expr),
        _ => None,
    }
}

/// Whether a `LIKE` (`ILIKE`) pattern compiles, by running the kernel that will evaluate it.
pub(crate) fn like_compiles(pattern: &ScalarValue, case_insensitive: bool) -> Result<(), String> {
    let Some(p) = text(pattern) else {
        return Ok(());
    };
    let values = StringArray::from(vec![""]);
    let pattern = Scalar::new(StringArray::from(vec![p]));
    let result = if case_insensitive {
        ilike(&values, &pattern)
    } else {
        like(&values, &pattern)
    };
    result.map(|_| ()).map_err(|e| e.to_string())
}

/// Whether a regular expression compiles as DataFusion's kernels compile it.
fn regex_compiles(pattern: &ScalarValue, case_insensitive: bool) -> Result<(), String> {
    let Some(p) = text(pattern) else {
        return Ok(());
    };
    regex::RegexBuilder::new(p)
        .case_insensitive(case_insensitive)
        .build()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The first literal pattern in `expr` that cannot be compiled, as an error message.
fn bad_pattern(expr: &Expr) -> Option<String> {
    let mut found = None;
    let _ = expr.apply(|e| {
        let problem = match e {
            Expr::Like(l) => literal(&l.pattern)
                .and_then(|v| like_compiles(v, l.case_insensitive).err())
                .map(|m| ("LIKE", m)),
            Expr::SimilarTo(l) => literal(&l.pattern)
                .and_then(|v| regex_compiles(v, l.case_insensitive).err())
                .map(|m| ("SIMILAR TO", m)),
            Expr::BinaryExpr(BinaryExpr { op, right, .. })
                if matches!(
                    op,
                    Operator::RegexMatch
                        | Operator::RegexIMatch
                        | Operator::RegexNotMatch
                        | Operator::RegexNotIMatch
                ) =>
            {
                let ci = matches!(op, Operator::RegexIMatch | Operator::RegexNotIMatch);
                literal(right)
                    .and_then(|v| regex_compiles(v, ci).err())
                    .map(|m| ("the regular expression", m))
            }
            Expr::ScalarFunction(f) if REGEX_FUNCTIONS.contains(&f.name()) => f
                .args
                .get(1)
                .and_then(literal)
                .and_then(|v| regex_compiles(v, false).err())
                .map(|m| ("the regular expression", m)),
            _ => None,
        };
        match problem {
            Some((what, message)) => {
                found = Some(format!("{what} pattern cannot be used: {message}"));
                Ok(TreeNodeRecursion::Stop)
            }
            None => Ok(TreeNodeRecursion::Continue),
        }
    });
    found
}

/// Refuses a plan with a literal pattern that cannot be compiled, wherever it is (subqueries
/// included), before anything runs.
pub(crate) fn check_patterns(plan: &LogicalPlan) -> Result<()> {
    let mut found = None;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            found = bad_pattern(e);
            Ok(if found.is_some() {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })
    })?;
    match found {
        Some(message) => plan_err!("{message}; use a shorter or simpler pattern"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};

    use super::*;

    #[test]
    fn a_like_pattern_too_large_to_compile_is_found_before_running() {
        let huge = "_".repeat(20_000);
        assert!(like_compiles(&ScalarValue::Utf8(Some(huge.clone())), false).is_err());
        assert!(like_compiles(&ScalarValue::Utf8(Some(huge.clone())), true).is_err());
        assert!(like_compiles(&ScalarValue::Utf8(Some("31%_5".into())), false).is_ok());
        assert!(like_compiles(&ScalarValue::Utf8(None), false).is_ok());
        let e = col("a").eq(lit("x")).and(col("b").like(lit(huge)));
        assert!(
            bad_pattern(&e)
                .unwrap()
                .starts_with("LIKE pattern cannot be used")
        );
        assert!(bad_pattern(&col("b").like(lit("%ab_"))).is_none());
    }

    #[test]
    fn a_regular_expression_that_does_not_compile_is_found() {
        let e = Expr::BinaryExpr(BinaryExpr::new(
            Box::new(col("a")),
            Operator::RegexMatch,
            Box::new(lit("(unclosed")),
        ));
        assert!(bad_pattern(&e).is_some());
        let ok = Expr::BinaryExpr(BinaryExpr::new(
            Box::new(col("a")),
            Operator::RegexIMatch,
            Box::new(lit("^31[0-9]+$")),
        ));
        assert!(bad_pattern(&ok).is_none());
    }
}
