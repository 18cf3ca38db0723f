//! Test helpers: calling a function directly and through SQL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF};
use datafusion::prelude::SessionContext;

pub(crate) fn lit(value: ScalarValue) -> ColumnarValue {
    ColumnarValue::Scalar(value)
}

/// An array of type `dt` (cast from strings).
pub(crate) fn arr(dt: &DataType, values: &[Option<&str>]) -> ColumnarValue {
    let strings: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
    ColumnarValue::Array(cast(&strings, dt).expect("test array casts"))
}

/// What `write` writes into an empty string.
pub(crate) fn written(write: impl FnOnce(&mut String)) -> String {
    let mut out = String::new();
    write(&mut out);
    out
}

/// The string types a string function must accept.
pub(crate) const STRING_TYPES: [DataType; 3] =
    [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View];

/// Calls `f` the way DataFusion's physical planner does.
pub(crate) fn invoke(f: &ScalarUDF, args: Vec<ColumnarValue>) -> Result<ColumnarValue> {
    let arg_fields: Vec<_> = args
        .iter()
        .enumerate()
        .map(|(i, a)| Arc::new(Field::new(format!("a{i}"), a.data_type(), true)))
        .collect();
    let scalars: Vec<_> = args
        .iter()
        .map(|a| match a {
            ColumnarValue::Scalar(s) => Some(s),
            ColumnarValue::Array(_) => None,
        })
        .collect();
    let return_field = f.return_field_from_args(ReturnFieldArgs {
        arg_fields: &arg_fields,
        scalar_arguments: &scalars,
    })?;
    let number_rows = args
        .iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1);
    f.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows,
        return_field,
        config_options: Arc::new(ConfigOptions::default()),
    })
}

/// The rows of a result as scalars.
pub(crate) fn values(out: &ColumnarValue) -> Vec<ScalarValue> {
    let array = out.to_array(1).expect("result converts to an array");
    (0..array.len())
        .map(|i| ScalarValue::try_from_array(&array, i).expect("row converts"))
        .collect()
}

/// Checks the rows of a string result.
#[track_caller]
pub(crate) fn assert_strings(out: &ColumnarValue, expected: &[Option<&str>]) {
    let got: Vec<Option<String>> = values(out)
        .iter()
        .map(|v| v.try_as_str().expect("a string result").map(str::to_owned))
        .collect();
    let expected: Vec<Option<String>> = expected.iter().map(|e| e.map(str::to_owned)).collect();
    assert_eq!(got, expected);
}

/// Checks that `f` maps the column `inputs`, of each string type, to `expected` of the same
/// type.
#[track_caller]
pub(crate) fn assert_maps_strings(
    f: &ScalarUDF,
    inputs: &[Option<&str>],
    expected: &[Option<&str>],
) {
    assert_maps_strings_with(f, inputs, &[], expected);
}

/// [`assert_maps_strings`] with the constant arguments `params` after the column.
#[track_caller]
pub(crate) fn assert_maps_strings_with(
    f: &ScalarUDF,
    inputs: &[Option<&str>],
    params: &[ColumnarValue],
    expected: &[Option<&str>],
) {
    for dt in STRING_TYPES {
        let mut args = vec![arr(&dt, inputs)];
        args.extend_from_slice(params);
        let out = invoke(f, args).expect("the call succeeds");
        assert_eq!(out.data_type(), dt);
        assert_strings(&out, expected);
    }
}

/// Checks that `f(s, NULL)` is NULL: a NULL constant option makes every row NULL.
#[track_caller]
pub(crate) fn assert_null_option(f: &ScalarUDF, s: &str) {
    let out = invoke(f, vec![lit(s.into()), lit(ScalarValue::Utf8(None))]);
    assert_strings(&out.expect("the call succeeds"), &[None]);
}

/// The keys of the secret store of [`sql_value`]'s session: name and bytes.
pub(crate) const SQL_KEYS: [(&str, &[u8]); 2] = [
    ("test_key", b"a key for tests"),
    ("other_key", b"another key for tests"),
];

/// The first value of a one-row query, rendered by `ScalarValue`'s `Display` (NULL as
/// `NULL`), with every Bund function registered and the keys [`SQL_KEYS`].
pub(crate) async fn sql_value(sql: &str) -> Result<String> {
    let ctx = SessionContext::new();
    let mut secrets = crate::SecretStore::new();
    for (name, key) in SQL_KEYS {
        secrets.insert(name, key.to_vec());
    }
    for udf in crate::all(&Arc::new(secrets)) {
        ctx.register_udf(udf.as_ref().clone());
    }
    let batches = ctx.sql(sql).await?.collect().await?;
    let column = batches[0].column(0);
    Ok(ScalarValue::try_from_array(column, 0)?.to_string())
}
