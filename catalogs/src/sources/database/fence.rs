//! The user's predicates on a database table under a row filter, sent behind a fence: the
//! row filter is evaluated first and alone in a subquery the database may neither merge
//! into the outer query nor push conditions into, and the user's predicates filter what it
//! returns:
//!
//! ```sql
//! SELECT … FROM (SELECT * FROM t WHERE <row filter> OFFSET 0) AS bund_rows WHERE <user's>
//! ```
//!
//! Sent beside the row filter (`WHERE <row filter> AND <user's>`), a predicate lets the
//! database answer through an index on the user's column, fetching the hidden rows that
//! match it before the row filter drops them, so the time of an empty answer told whether
//! such rows exist. Behind the fence the database reads what the row filter selects, then
//! filters that: the time depends on the visible rows only, and only the matching rows
//! are sent to Bund. Each kind's fence is [`super::dialect::Dialect::fence`]; a kind
//! without one (a Flight SQL service, whose planner may drop an empty OFFSET) gets the row
//! filter alone.
//!
//! The planner marks such a predicate with [`after_row_filter`] when it copies it into the
//! scan, and only where the whole row filter is in the scan's SQL and the database
//! evaluates it exactly (a superset would let hidden rows into the subquery); the mark
//! evaluates to its argument, so a plan that ran it anyway would still be correct.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

const NAME: &str = "bund_after_row_filter";

#[derive(Debug, PartialEq, Eq, Hash)]
struct AfterRowFilter {
    signature: Signature,
}

impl ScalarUDFImpl for AfterRowFilter {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match args.args.into_iter().next() {
            Some(v) => Ok(v),
            None => plan_err!("{NAME} takes one argument"),
        }
    }
}

static UDF: LazyLock<Arc<ScalarUDF>> = LazyLock::new(|| {
    Arc::new(ScalarUDF::new_from_impl(AfterRowFilter {
        signature: Signature::exact(vec![DataType::Boolean], Volatility::Immutable),
    }))
});

/// `predicate`, marked as the user's: a database source sends it behind its fence, after
/// the row filter (or not at all, where its kind has no fence).
pub fn after_row_filter(predicate: Expr) -> Expr {
    UDF.call(vec![predicate])
}

/// The predicate a filter marks with [`after_row_filter`], if it is one.
pub(crate) fn marked(filter: &Expr) -> Option<&Expr> {
    match filter {
        Expr::ScalarFunction(f) if f.func.name() == NAME => f.args.first(),
        _ => None,
    }
}
