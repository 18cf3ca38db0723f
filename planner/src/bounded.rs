//! Functions whose result size the statement chooses, bounded before they allocate.
//!
//! The memory pool counts what operators hold (sorts, aggregations, joins), not the arrays a
//! function returns: `repeat('x', 400000000)` allocated 400 MB outside the limit, once per
//! row. Every function whose output can be larger than its inputs — by a count it is given
//! (`repeat`, `lpad`, `rpad`), by repeating a replacement (`replace`, `regexp_replace`), by
//! adding its inputs up (`concat`, `concat_ws`, `||`, `overlay`), or by expanding a format
//! (`to_char`, `encode`, `translate`) — is wrapped here: before it runs over a batch, an
//! upper bound of what it would return is computed from its arguments, and past
//! `max_function_output_mb` the query fails with a message that says so. Constant folding
//! runs the same wrappers, so a literal call is refused while planning. `||` on text is
//! planned as `bounded_concat`, the same operation with the same check.
//!
//! A bound that grows only with its inputs' sizes would still let a chain of them double a
//! value at each step; since every step is bounded, the chain is too.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::kernels::concat_elements::concat_elements_utf8;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::FieldRef;
use datafusion::common::tree_node::Transformed;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::SessionState;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Documentation, Expr, ExprSchemable, LogicalPlan, Operator,
    ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// How to bound a function's output over one batch, from its arguments.
type Estimate = fn(&[ColumnarValue], usize) -> u64;

/// The functions wrapped, with their bounds.
const BOUNDED: &[(&str, Estimate)] = &[
    ("repeat", repeat_bound),
    ("lpad", pad_bound),
    ("rpad", pad_bound),
    ("replace", replace_bound),
    ("regexp_replace", regexp_replace_bound),
    ("translate", translate_bound),
    ("overlay", sum_bound),
    ("concat", sum_bound),
    ("concat_ws", concat_ws_bound),
    ("to_char", format_bound),
    ("date_format", format_bound),
    ("encode", encode_bound),
];

/// Replaces each function of [`BOUNDED`] in `state` by its bounded wrapper, and adds
/// `bounded_concat`.
pub(crate) fn install(state: &mut SessionState, limit: u64) -> Result<()> {
    for (name, estimate) in BOUNDED {
        let Some(inner) = state.scalar_functions().get(*name).cloned() else {
            continue;
        };
        let wrapped = Bounded {
            name: (*name).to_string(),
            inner,
            estimate: *estimate,
            limit,
        };
        state.register_udf(Arc::new(ScalarUDF::new_from_impl(wrapped)))?;
    }
    state.register_udf(Arc::new(bounded_concat(limit)))?;
    Ok(())
}

/// The `bounded_concat` function `||` on text is planned as.
pub(crate) fn bounded_concat(limit: u64) -> ScalarUDF {
    ScalarUDF::new_from_impl(BoundedConcat {
        signature: Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
        limit,
    })
}

/// Bytes of each row's value of a text or binary argument.
fn row_len(arg: &ColumnarValue, i: usize) -> u64 {
    match arg {
        ColumnarValue::Scalar(v) => scalar_len(v),
        ColumnarValue::Array(a) => array_row_len(a, i),
    }
}

fn scalar_len(v: &ScalarValue) -> u64 {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.len() as u64,
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b)) => b.len() as u64,
        other if other.is_null() => 0,
        // numbers, dates: their text is short
        _ => 32,
    }
}

fn array_row_len(a: &ArrayRef, i: usize) -> u64 {
    if i >= a.len() || a.is_null(i) {
        return 0;
    }
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).len() as u64,
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).len() as u64,
        DataType::Utf8View => a.as_string_view().value(i).len() as u64,
        DataType::Binary => a.as_binary::<i32>().value(i).len() as u64,
        DataType::LargeBinary => a.as_binary::<i64>().value(i).len() as u64,
        DataType::BinaryView => a.as_binary_view().value(i).len() as u64,
        _ => 32,
    }
}

/// Each row's value of an integer argument (negative, NULL or not an integer: 0).
fn row_int(arg: &ColumnarValue, i: usize) -> u64 {
    use datafusion::arrow::datatypes::{Int32Type, Int64Type};
    let positive = |n: i64| u64::try_from(n).unwrap_or(0);
    match arg {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(n))) => positive(*n),
        ColumnarValue::Array(a) if i >= a.len() || a.is_null(i) => 0,
        ColumnarValue::Array(a) if a.data_type() == &DataType::Int64 => {
            positive(a.as_primitive::<Int64Type>().value(i))
        }
        ColumnarValue::Array(a) if a.data_type() == &DataType::Int32 => {
            positive(i64::from(a.as_primitive::<Int32Type>().value(i)))
        }
        // other integer types, rarely: through a scalar
        other => {
            let v = match other {
                ColumnarValue::Scalar(v) => v.clone(),
                ColumnarValue::Array(a) => match ScalarValue::try_from_array(a, i) {
                    Ok(v) => v,
                    Err(_) => return 0,
                },
            };
            match v.cast_to(&DataType::Int64) {
                Ok(ScalarValue::Int64(Some(n))) => positive(n),
                _ => 0,
            }
        }
    }
}

/// Each row's value of a text argument, borrowed; `None` for NULL and other types.
fn row_text(arg: &ColumnarValue, i: usize) -> Option<&str> {
    match arg {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => Some(s),
        ColumnarValue::Array(a) if i < a.len() && !a.is_null(i) => match a.data_type() {
            DataType::Utf8 => Some(a.as_string::<i32>().value(i)),
            DataType::LargeUtf8 => Some(a.as_string::<i64>().value(i)),
            DataType::Utf8View => Some(a.as_string_view().value(i)),
            _ => None,
        },
        _ => None,
    }
}

/// Sum over the batch's rows (a scalar counts once per row).
fn per_row(rows: usize, f: impl Fn(usize) -> u64) -> u64 {
    (0..rows.max(1)).fold(0u64, |acc, i| acc.saturating_add(f(i)))
}

fn arg(args: &[ColumnarValue], i: usize) -> Option<&ColumnarValue> {
    args.get(i)
}

fn repeat_bound(args: &[ColumnarValue], rows: usize) -> u64 {
    let (Some(s), Some(n)) = (arg(args, 0), arg(args, 1)) else {
        return 0;
    };
    per_row(rows, |i| row_len(s, i).saturating_mul(row_int(n, i)))
}

fn pad_bound(args: &[ColumnarValue], rows: usize) -> u64 {
    let (Some(s), Some(n)) = (arg(args, 0), arg(args, 1)) else {
        return 0;
    };
    // a character takes at most four bytes
    per_row(rows, |i| {
        row_len(s, i).saturating_add(row_int(n, i).saturating_mul(4))
    })
}

fn replace_bound(args: &[ColumnarValue], rows: usize) -> u64 {
    let (Some(s), Some(to)) = (arg(args, 0), arg(args, 2)) else {
        return 0;
    };
    // an empty pattern matches between every two characters
    per_row(rows, |i| {
        let len = row_len(s, i);
        len.saturating_add(len.saturating_add(1).saturating_mul(row_len(to, i)))
    })
}

fn regexp_replace_bound(args: &[ColumnarValue], rows: usize) -> u64 {
    let (Some(s), Some(repl)) = (arg(args, 0), arg(args, 2)) else {
        return 0;
    };
    // with the `g` flag every match is replaced, and an empty pattern matches everywhere
    let global = |i: usize| {
        arg(args, 3)
            .and_then(|f| row_text(f, i))
            .is_some_and(|f| f.contains('g'))
    };
    // each `$n` or `\\n` in the replacement may insert the whole value
    let refs = |i: usize| row_text(repl, i).map_or(0, |t| t.matches(['$', '\\']).count() as u64);
    per_row(rows, |i| {
        let len = row_len(s, i);
        let matches = if global(i) { len.saturating_add(1) } else { 1 };
        let each = row_len(repl, i).saturating_add(refs(i).saturating_mul(len));
        len.saturating_add(matches.saturating_mul(each))
    })
}

fn translate_bound(args: &[ColumnarValue], rows: usize) -> u64 {
    let Some(s) = arg(args, 0) else { return 0 };
    per_row(rows, |i| row_len(s, i).saturating_mul(4))
}

fn sum_bound(args: &[ColumnarValue], rows: usize) -> u64 {
    per_row(rows, |i| {
        args.iter()
            .fold(0u64, |acc, a| acc.saturating_add(row_len(a, i)))
    })
}

fn concat_ws_bound(args: &[ColumnarValue], rows: usize) -> u64 {
    let Some(sep) = arg(args, 0) else { return 0 };
    let joins = args.len().saturating_sub(2) as u64;
    sum_bound(args, rows).saturating_add(per_row(rows, |i| row_len(sep, i).saturating_mul(joins)))
}

fn format_bound(args: &[ColumnarValue], rows: usize) -> u64 {
    let Some(format) = arg(args, 1) else {
        return per_row(rows, |_| 64);
    };
    // one specifier (`%+`, two characters) writes at most about thirty
    per_row(rows, |i| {
        row_len(format, i).saturating_mul(16).saturating_add(64)
    })
}

fn encode_bound(args: &[ColumnarValue], rows: usize) -> u64 {
    let Some(s) = arg(args, 0) else { return 0 };
    per_row(rows, |i| row_len(s, i).saturating_mul(2).saturating_add(4))
}

fn refuse(name: &str, bytes: u64, rows: usize, limit: u64) -> Result<ColumnarValue> {
    exec_err!(
        "{name} would return up to {} MiB for {rows} row(s); one call may return at most {} MiB (max_function_output_mb)",
        bytes >> 20,
        limit >> 20
    )
}

/// A function of DataFusion's, run only when its output is bounded.
#[derive(Debug)]
struct Bounded {
    name: String,
    inner: Arc<ScalarUDF>,
    estimate: Estimate,
    limit: u64,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.limit == other.limit
    }
}

impl Eq for Bounded {}

impl Hash for Bounded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.limit.hash(state);
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        &self.name
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let bytes = (self.estimate)(&args.args, rows);
        if bytes > self.limit {
            return refuse(&self.name, bytes, rows, self.limit);
        }
        self.inner.invoke_with_args(args)
    }
}

/// `a || b` on text: NULL when either is NULL, bounded like the functions above.
#[derive(Debug, PartialEq, Eq, Hash)]
struct BoundedConcat {
    signature: Signature,
    limit: u64,
}

impl ScalarUDFImpl for BoundedConcat {
    fn name(&self) -> &str {
        "bounded_concat"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [a, b] = args.args.as_slice() else {
            return exec_err!("bounded_concat takes two arguments");
        };
        if let (ColumnarValue::Scalar(x), ColumnarValue::Scalar(y)) = (a, b) {
            let v = match (x, y) {
                (ScalarValue::Utf8(Some(x)), ScalarValue::Utf8(Some(y))) => {
                    let bytes = (x.len() + y.len()) as u64;
                    if bytes > self.limit {
                        return refuse("||", bytes, 1, self.limit);
                    }
                    ScalarValue::Utf8(Some(format!("{x}{y}")))
                }
                _ => ScalarValue::Utf8(None),
            };
            return Ok(ColumnarValue::Scalar(v));
        }
        let bytes = sum_bound(&args.args, rows);
        if bytes > self.limit {
            return refuse("||", bytes, rows, self.limit);
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (Some(x), Some(y)) = (
            arrays[0].as_any().downcast_ref::<StringArray>(),
            arrays[1].as_any().downcast_ref::<StringArray>(),
        ) else {
            return exec_err!("bounded_concat takes text");
        };
        Ok(ColumnarValue::Array(Arc::new(concat_elements_utf8(x, y)?)))
    }
}

/// Plans `a || b` on text as `bounded_concat(a, b)`, keeping the expression's name.
#[derive(Debug)]
pub(crate) struct BoundConcatenation {
    udf: Arc<ScalarUDF>,
}

impl BoundConcatenation {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            udf: Arc::new(bounded_concat(limit)),
        }
    }
}

impl OptimizerRule for BoundConcatenation {
    fn name(&self) -> &str {
        "bund_bound_concatenation"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if matches!(plan, LogicalPlan::Values(_)) {
            return Ok(Transformed::no(plan));
        }
        let schema = plan
            .inputs()
            .first()
            .map(|i| Arc::clone(i.schema()))
            .unwrap_or_else(|| Arc::clone(plan.schema()));
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|e| {
            let saved = names.save(&e);
            let rewritten = e.transform_up(|e| match e {
                Expr::BinaryExpr(BinaryExpr {
                    left,
                    op: Operator::StringConcat,
                    right,
                }) if left.get_type(&schema).is_ok_and(|t| t == DataType::Utf8)
                    && right.get_type(&schema).is_ok_and(|t| t == DataType::Utf8) =>
                {
                    Ok(Transformed::yes(Expr::ScalarFunction(
                        ScalarFunction::new_udf(Arc::clone(&self.udf), vec![*left, *right]),
                    )))
                }
                other => Ok(Transformed::no(other)),
            })?;
            Ok(rewritten.update_data(|e| saved.restore(e)))
        })
    }
}

/// Bytes of text literals that a statement makes into per-row values. A constant in the
/// output (`SELECT '…' FROM t`), in a function's arguments or in a CASE branch becomes an
/// array of the batch's length: a 4 MiB literal over 8,192 rows is 32 GiB, whatever the
/// functions around it. Operands of comparisons, IN lists, BETWEEN bounds and LIKE
/// patterns are compared as they are and are not counted.
pub(crate) fn check_broadcast_literals(plan: &LogicalPlan, budget: u64) -> Result<()> {
    let mut total = 0u64;
    plan.apply_with_subqueries(|node| {
        if !matches!(node, LogicalPlan::Values(_)) {
            node.apply_expressions(|e| {
                total = total.saturating_add(broadcast_bytes(e));
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })?;
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })?;
    if total > budget {
        return plan_err!(
            "the statement's text constants that become column values or function arguments total {} KiB; at most {} KiB are accepted (constants in comparisons and IN lists are not counted)",
            total.div_ceil(1024),
            budget / 1024
        );
    }
    Ok(())
}

/// Bytes one row of a literal takes once it is an array: text and binary their length,
/// other values (numbers, dates) at most sixteen.
fn literal_width(v: &ScalarValue) -> u64 {
    match v {
        ScalarValue::Utf8(_)
        | ScalarValue::LargeUtf8(_)
        | ScalarValue::Utf8View(_)
        | ScalarValue::Binary(_)
        | ScalarValue::LargeBinary(_)
        | ScalarValue::BinaryView(_) => scalar_len(v),
        _ => 16,
    }
}

fn broadcast_bytes(e: &Expr) -> u64 {
    let skip = |e: &Expr| match e {
        Expr::Literal(..) => 0,
        other => broadcast_bytes(other),
    };
    match e {
        Expr::Literal(v, _) => literal_width(v),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op:
                Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq
                | Operator::RegexMatch
                | Operator::RegexIMatch
                | Operator::RegexNotMatch
                | Operator::RegexNotIMatch
                | Operator::IsDistinctFrom
                | Operator::IsNotDistinctFrom,
            right,
        }) => skip(left).saturating_add(skip(right)),
        Expr::InList(l) => l.list.iter().fold(broadcast_bytes(&l.expr), |acc, x| {
            acc.saturating_add(skip(x))
        }),
        Expr::Like(l) | Expr::SimilarTo(l) => {
            broadcast_bytes(&l.expr).saturating_add(skip(&l.pattern))
        }
        Expr::Between(b) => broadcast_bytes(&b.expr)
            .saturating_add(skip(&b.low))
            .saturating_add(skip(&b.high)),
        other => {
            let mut n = 0u64;
            let _ = other.apply_children(|c| {
                n = n.saturating_add(broadcast_bytes(c));
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            });
            n
        }
    }
}
