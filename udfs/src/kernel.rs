//! Plumbing shared by every function: signatures, constant parameters, and running a
//! per-string kernel over a scalar or an array of any of Arrow's three string types.
//!
//! Scalars go through the array path as one-row arrays, so every kernel has exactly one
//! implementation; the cost is one tiny array per call, not per row.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, GenericStringBuilder, OffsetSizeTrait,
    PrimitiveBuilder, StringViewBuilder,
};
use datafusion::arrow::datatypes::{ArrowPrimitiveType, DataType};
use datafusion::common::types::{
    NativeType, logical_boolean, logical_date, logical_float64, logical_int64, logical_string,
};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Signature, TypeSignature, TypeSignatureClass, Volatility,
};

/// A string argument of any string type, kept as it is (Utf8, LargeUtf8 or Utf8View).
pub(crate) fn string() -> Coercion {
    Coercion::new_exact(TypeSignatureClass::Native(logical_string()))
}

/// An integer argument, widened to Int64.
pub(crate) fn int64() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_int64()),
        vec![TypeSignatureClass::Integer],
        NativeType::Int64,
    )
}

/// A number of any numeric type, widened to Float64 (coordinates, distances).
pub(crate) fn float64() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_float64()),
        vec![TypeSignatureClass::Numeric],
        NativeType::Float64,
    )
}

/// A date (Date32 or Date64, kept); a timestamp or a string is cast to Date32.
pub(crate) fn date() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_date()),
        vec![
            TypeSignatureClass::Timestamp,
            TypeSignatureClass::Native(logical_string()),
        ],
        NativeType::Date,
    )
}

/// A boolean argument.
pub(crate) fn boolean() -> Coercion {
    Coercion::new_exact(TypeSignatureClass::Native(logical_boolean()))
}

/// One accepted argument list.
pub(crate) fn args(coercions: Vec<Coercion>) -> TypeSignature {
    TypeSignature::Coercible(coercions)
}

/// A string and an optional constant string option (`lang`, `style`), Immutable.
pub(crate) fn string_and_option() -> Signature {
    Signature::one_of(
        vec![args(vec![string()]), args(vec![string(), string()])],
        Volatility::Immutable,
    )
}

/// The return type of a function whose result has its first argument's string type.
pub(crate) fn same_string_type(name: &str, arg_types: &[DataType]) -> Result<DataType> {
    match arg_types.first() {
        Some(dt @ (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)) => Ok(dt.clone()),
        other => datafusion::common::plan_err!(
            "{name} expects a string as its first argument, got {other:?}"
        ),
    }
}

/// The return type of a function of one argument of any type whose result has its type.
pub(crate) fn type_of_only_argument(name: &str, arg_types: &[DataType]) -> Result<DataType> {
    match arg_types {
        [dt] => Ok(dt.clone()),
        other => datafusion::common::plan_err!("{name} expects one argument, got {}", other.len()),
    }
}

/// A constant parameter of a function (`head`, `style`, …): the value, or `None` when the
/// parameter is NULL, which makes every row NULL.
pub(crate) fn constant<'a>(
    name: &str,
    param: &str,
    arg: &'a ColumnarValue,
) -> Result<Option<&'a ScalarValue>> {
    match arg {
        ColumnarValue::Scalar(v) if v.is_null() => Ok(None),
        ColumnarValue::Scalar(v) => Ok(Some(v)),
        ColumnarValue::Array(_) => {
            exec_err!("{name}: {param} must be a constant, not a column")
        }
    }
}

/// A constant non-negative count parameter (`head`, `tail`).
pub(crate) fn count_param(name: &str, param: &str, arg: &ColumnarValue) -> Result<Option<usize>> {
    match constant(name, param, arg)? {
        None => Ok(None),
        Some(ScalarValue::Int64(Some(n))) => match usize::try_from(*n) {
            Ok(n) => Ok(Some(n)),
            Err(_) => exec_err!("{name}: {param} must not be negative, got {n}"),
        },
        Some(other) => exec_err!("{name}: {param} must be an integer, got {other:?}"),
    }
}

/// A constant string parameter (`style`, `lang`, `mask_char`).
pub(crate) fn str_param<'a>(
    name: &str,
    param: &str,
    arg: &'a ColumnarValue,
) -> Result<Option<&'a str>> {
    match constant(name, param, arg)? {
        None => Ok(None),
        Some(v) => match v.try_as_str() {
            Some(s) => Ok(s),
            None => exec_err!("{name}: {param} must be a string, got {v:?}"),
        },
    }
}

/// An optional constant string parameter (`lang`, `style`, `mask_char`) read by `parse`:
/// `default` when the call leaves it out, `None` when it is NULL.
pub(crate) fn option<'a, T>(
    name: &str,
    param: &str,
    arg: Option<&'a ColumnarValue>,
    default: &'a str,
    parse: impl FnOnce(&'a str) -> Result<T>,
) -> Result<Option<T>> {
    let value = match arg {
        None => default,
        Some(arg) => match str_param(name, param, arg)? {
            Some(value) => value,
            None => return Ok(None),
        },
    };
    parse(value).map(Some)
}

/// A constant boolean parameter (`strict`).
pub(crate) fn bool_param(name: &str, param: &str, arg: &ColumnarValue) -> Result<Option<bool>> {
    match constant(name, param, arg)? {
        None => Ok(None),
        Some(ScalarValue::Boolean(b)) => Ok(*b),
        Some(other) => exec_err!("{name}: {param} must be a boolean, got {other:?}"),
    }
}

/// A result that is NULL on every row, of `return_type`.
pub(crate) fn all_null(return_type: &DataType) -> Result<ColumnarValue> {
    Ok(ColumnarValue::Scalar(ScalarValue::try_from(return_type)?))
}

/// Runs `body` on the array form of `input` and gives back a scalar for a scalar input.
fn on_array(
    input: &ColumnarValue,
    body: impl FnOnce(&ArrayRef) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    match input {
        ColumnarValue::Array(array) => Ok(ColumnarValue::Array(body(array)?)),
        ColumnarValue::Scalar(scalar) => {
            let out = body(&scalar.to_array_of_size(1)?)?;
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        }
    }
}

/// Runs `body` on the array forms of `args` (scalars repeated to the arrays' length) and
/// gives back a scalar when every argument is a scalar.
pub(crate) fn on_arrays(
    args: &[ColumnarValue],
    body: impl FnOnce(&[ArrayRef]) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let out = body(&arrays)?;
    if all_scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// Calls `f` on every row of a string array of any string type.
pub(crate) fn for_each_str(
    name: &str,
    array: &ArrayRef,
    f: impl FnMut(Option<&str>),
) -> Result<()> {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().for_each(f),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(f),
        DataType::Utf8View => array.as_string_view().iter().for_each(f),
        other => return exec_err!("{name}: expected a string argument, got {other}"),
    }
    Ok(())
}

/// Maps every non-NULL string through `kernel` into a result of the input's string type.
///
/// `kernel` writes the output into the scratch `String` it is given (cleared before each
/// row, allocated once per batch) and returns `false` for a NULL result.
pub(crate) fn map_strings(
    name: &str,
    input: &ColumnarValue,
    kernel: impl FnMut(&str, &mut String) -> bool,
) -> Result<ColumnarValue> {
    build_strings(name, input, Whole(kernel))
}

/// Maps every non-NULL string to the concatenation of the `N` parts `kernel` returns
/// (pieces of the input, or constants) into a result of the input's string type.
///
/// For a kernel whose result is made of pieces of its input (a kept prefix and a fixed
/// mask), this copies each piece once, straight into the result, where [`map_strings`]
/// copies it into the scratch `String` first.
pub(crate) fn map_string_parts<const N: usize>(
    name: &str,
    input: &ColumnarValue,
    kernel: impl for<'a> FnMut(&'a str) -> [&'a str; N],
) -> Result<ColumnarValue> {
    build_strings(name, input, Parts(kernel))
}

/// Runs `fill` over the array form of `input` with a builder of its string type, sized for
/// it, and gives back a scalar for a scalar input.
fn build_strings(name: &str, input: &ColumnarValue, fill: impl Fill) -> Result<ColumnarValue> {
    on_array(input, |array| {
        let rows = array.len();
        match array.data_type() {
            DataType::Utf8View => filled(name, array, StringViewBuilder::with_capacity(rows), fill),
            DataType::LargeUtf8 => {
                let bytes = array.as_string::<i64>().values().len();
                let builder = GenericStringBuilder::<i64>::with_capacity(rows, bytes);
                filled(name, array, builder, fill)
            }
            _ => {
                let bytes = array.as_string_opt::<i32>().map_or(0, |a| a.values().len());
                let builder = GenericStringBuilder::<i32>::with_capacity(rows, bytes);
                filled(name, array, builder, fill)
            }
        }
    })
}

/// The array `fill` writes into `builder`.
fn filled(
    name: &str,
    array: &ArrayRef,
    mut builder: impl StringSink,
    fill: impl Fill,
) -> Result<ArrayRef> {
    fill.fill(name, array, &mut builder)?;
    Ok(builder.finish_array())
}

/// How a row's result is written into a string builder of any type.
trait Fill {
    /// Appends the result of every row of the string array `array` to `out`.
    fn fill(self, name: &str, array: &ArrayRef, out: &mut impl StringSink) -> Result<()>;
}

/// A [`map_strings`] kernel.
struct Whole<K>(K);

impl<K: FnMut(&str, &mut String) -> bool> Fill for Whole<K> {
    fn fill(mut self, name: &str, array: &ArrayRef, out: &mut impl StringSink) -> Result<()> {
        let mut scratch = String::new();
        for_each_str(name, array, |s| match s {
            Some(s) => {
                scratch.clear();
                let value = (self.0)(s, &mut scratch).then_some(scratch.as_str());
                out.put(value);
            }
            None => out.put(None),
        })
    }
}

/// A [`map_string_parts`] kernel.
struct Parts<K>(K);

impl<K: for<'a> FnMut(&'a str) -> [&'a str; N], const N: usize> Fill for Parts<K> {
    fn fill(mut self, name: &str, array: &ArrayRef, out: &mut impl StringSink) -> Result<()> {
        // Only the view builder, which takes whole values, needs it.
        let mut scratch = String::new();
        for_each_str(name, array, |s| match s {
            Some(s) => out.put_parts(&(self.0)(s), &mut scratch),
            None => out.put(None),
        })
    }
}

/// An Arrow string builder of any of the three string types.
trait StringSink {
    fn put(&mut self, value: Option<&str>);
    /// Appends the concatenation of `parts`, using `scratch` if the builder needs a whole
    /// value at once.
    fn put_parts(&mut self, parts: &[&str], scratch: &mut String);
    fn finish_array(self) -> ArrayRef;
}

impl<O: OffsetSizeTrait> StringSink for GenericStringBuilder<O> {
    fn put(&mut self, value: Option<&str>) {
        self.append_option(value);
    }
    fn put_parts(&mut self, parts: &[&str], _scratch: &mut String) {
        use std::fmt::Write;
        let Some((last, first)) = parts.split_last() else {
            return self.append_value("");
        };
        for part in first {
            // Writing into the builder's buffer cannot fail.
            let _ = self.write_str(part);
        }
        // Appends the last part and ends the value written so far.
        self.append_value(last);
    }
    fn finish_array(mut self) -> ArrayRef {
        Arc::new(self.finish())
    }
}

impl StringSink for StringViewBuilder {
    fn put(&mut self, value: Option<&str>) {
        self.append_option(value);
    }
    fn put_parts(&mut self, parts: &[&str], scratch: &mut String) {
        scratch.clear();
        parts.iter().for_each(|part| scratch.push_str(part));
        self.append_value(scratch.as_str());
    }
    fn finish_array(mut self) -> ArrayRef {
        Arc::new(self.finish())
    }
}

/// An Arrow builder that takes optional values of `T`.
pub(crate) trait Sink<T> {
    fn with_rows(rows: usize) -> Self;
    fn push(&mut self, value: Option<T>);
    fn finish_array(self) -> ArrayRef;
}

impl Sink<bool> for BooleanBuilder {
    fn with_rows(rows: usize) -> Self {
        BooleanBuilder::with_capacity(rows)
    }
    fn push(&mut self, value: Option<bool>) {
        self.append_option(value);
    }
    fn finish_array(mut self) -> ArrayRef {
        Arc::new(self.finish())
    }
}

impl<P: ArrowPrimitiveType> Sink<P::Native> for PrimitiveBuilder<P> {
    fn with_rows(rows: usize) -> Self {
        PrimitiveBuilder::with_capacity(rows)
    }
    fn push(&mut self, value: Option<P::Native>) {
        self.append_option(value);
    }
    fn finish_array(mut self) -> ArrayRef {
        Arc::new(self.finish())
    }
}

/// Maps every non-NULL string through `kernel` into an array built by `B` (a boolean or
/// primitive builder); `kernel` returns `None` for a NULL result.
pub(crate) fn map_to<T, B: Sink<T>>(
    name: &str,
    input: &ColumnarValue,
    mut kernel: impl FnMut(&str) -> Option<T>,
) -> Result<ColumnarValue> {
    on_array(input, |array| {
        let mut builder = B::with_rows(array.len());
        for_each_str(name, array, |s| builder.push(s.and_then(&mut kernel)))?;
        Ok(builder.finish_array())
    })
}
