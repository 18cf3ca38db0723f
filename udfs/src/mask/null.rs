//! `mask_null(x)`: a NULL of `x`'s type, the strongest mask that keeps a column's schema.

use datafusion::arrow::array::new_null_array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, Signature, Volatility,
};

use crate::function::Function;
use crate::kernel;

/// `mask_null(x)`.
pub(crate) struct MaskNull;

impl Function for MaskNull {
    const NAME: &'static str = "mask_null";

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let dt = args.return_field.data_type();
        match &args.args[0] {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(new_null_array(dt, a.len()))),
            ColumnarValue::Scalar(_) => Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &new_null_array(dt, 1),
                0,
            )?)),
        }
    }

    fn signature() -> Signature {
        Signature::any(1, Volatility::Immutable)
    }

    fn return_type(arg_types: &[DataType]) -> Result<DataType> {
        kernel::type_of_only_argument(Self::NAME, arg_types)
    }

    fn doc() -> Documentation {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{arr, invoke, lit, values};
    use datafusion::arrow::array::{Array, Int32Array, ListArray};
    use datafusion::arrow::datatypes::Int32Type;
    use std::sync::Arc;

    #[test]
    fn arrays_of_any_type_become_nulls_of_that_type() -> Result<()> {
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
            let out = invoke(&MaskNull.udf(), vec![input])?;
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
        for (input, want) in [
            (ScalarValue::Utf8(Some("x".into())), ScalarValue::Utf8(None)),
            (ScalarValue::Float64(Some(1.5)), ScalarValue::Float64(None)),
            (ScalarValue::Date32(Some(1)), ScalarValue::Date32(None)),
            (ScalarValue::Int64(None), ScalarValue::Int64(None)),
        ] {
            assert_eq!(values(&invoke(&MaskNull.udf(), vec![lit(input)])?), [want]);
        }
        Ok(())
    }
}
