//! `mask_null(x)`: a NULL of `x`'s type, the strongest mask that keeps a column's schema.

use std::sync::LazyLock;

use datafusion::arrow::array::new_null_array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_OTHER,
        "A NULL of the argument's type, whatever its value: the column keeps its name and \
         type, and shows nothing. Accepts any type.",
        "mask_null(expression)",
    )
    .with_sql_example(
        r#"```sql
> SELECT mask_null('310101198503121236'), mask_null(42);
+-----------------------------------------+------------------------+
| mask_null(Utf8("310101198503121236"))   | mask_null(Int64(42))   |
+-----------------------------------------+------------------------+
| NULL                                    | NULL                   |
+-----------------------------------------+------------------------+
```"#,
    )
    .with_argument("expression", "A value of any type.")
    .build()
});

/// `mask_null(x)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskNullFunc {
    signature: Signature,
}

impl Default for MaskNullFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl MaskNullFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MaskNullFunc {
    fn name(&self) -> &str {
        "mask_null"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [dt] => Ok(dt.clone()),
            other => plan_err!("mask_null expects one argument, got {}", other.len()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let dt = args.return_field.data_type();
        match &args.args[0] {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(new_null_array(dt, a.len()))),
            ColumnarValue::Scalar(_) => Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &new_null_array(dt, 1),
                0,
            )?)),
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{arr, invoke, lit, sql_value, values};
    use datafusion::arrow::array::{Array, Int32Array, ListArray};
    use datafusion::arrow::datatypes::Int32Type;
    use std::sync::Arc;

    #[test]
    fn arrays_of_any_type_become_nulls_of_that_type() -> Result<()> {
        let f = MaskNullFunc::new();
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            None,
        ]);
        let inputs: Vec<ColumnarValue> = vec![
            arr(&DataType::Utf8View, &[Some("310101198503121236"), None]),
            arr(&DataType::LargeUtf8, &[Some("a"), Some("b")]),
            ColumnarValue::Array(Arc::new(Int32Array::from(vec![1, 2]))),
            ColumnarValue::Array(Arc::new(list)),
        ];
        for input in inputs {
            let dt = input.data_type();
            let out = invoke(&f, vec![input])?;
            let ColumnarValue::Array(a) = out else {
                panic!("expected an array for {dt}");
            };
            assert_eq!(a.data_type(), &dt);
            assert_eq!((a.len(), a.null_count()), (2, 2), "{dt}");
        }
        Ok(())
    }

    #[test]
    fn scalars_become_null_scalars_of_their_type() -> Result<()> {
        let f = MaskNullFunc::new();
        for (input, want) in [
            (ScalarValue::Utf8(Some("x".into())), ScalarValue::Utf8(None)),
            (ScalarValue::Float64(Some(1.5)), ScalarValue::Float64(None)),
            (ScalarValue::Date32(Some(1)), ScalarValue::Date32(None)),
            (ScalarValue::Int64(None), ScalarValue::Int64(None)),
        ] {
            assert_eq!(values(&invoke(&f, vec![lit(input)])?), [want]);
        }
        Ok(())
    }

    #[tokio::test]
    async fn sql_nulls_a_value_and_needs_one_argument() -> Result<()> {
        assert_eq!(sql_value("SELECT mask_null(42)").await?, "NULL");
        assert_eq!(
            sql_value("SELECT arrow_typeof(mask_null(DATE '2020-01-02'))").await?,
            "Date32"
        );
        let err = sql_value("SELECT mask_null(1, 2)").await.unwrap_err();
        assert!(err.to_string().contains("mask_null"), "{err}");
        Ok(())
    }
}
