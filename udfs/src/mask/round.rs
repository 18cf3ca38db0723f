//! `mask_round(x, step)`: a number floored to a multiple of `step` (incomes, capital,
//! coordinates to a grid).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ArrowNativeTypeOp, AsArray};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type,
    DecimalType, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_MATH;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, Signature, Volatility,
};

use crate::function::Function;
use crate::kernel;

/// Arrow's half-precision float (not re-exported under its own name).
type F16 = <Float16Type as ArrowPrimitiveType>::Native;

/// The largest multiple of `step` (> 0) not above `x`, or `None` when it is out of the
/// type's range. Integers and decimals (their unscaled values) only.
fn floor_int<N: ArrowNativeTypeOp>(x: N, step: N) -> Option<N> {
    let r = x.mod_checked(step).ok()?;
    // `%` keeps the dividend's sign; flooring needs the remainder in [0, step).
    let r = if r.is_lt(N::ZERO) {
        r.add_wrapping(step)
    } else {
        r
    };
    x.sub_checked(r).ok()
}

/// The float version of [`floor_int`]; NaN and infinities are returned unchanged.
fn floor_f64(x: f64, step: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let r = x % step;
    x - if r < 0.0 { r + step } else { r }
}

fn floor_f32(x: f32, step: f32) -> f32 {
    if !x.is_finite() {
        return x;
    }
    let r = x % step;
    x - if r < 0.0 { r + step } else { r }
}

/// `step` as a value of `T`, already cast to `T`'s data type.
fn native<T: ArrowPrimitiveType>(step: &ScalarValue) -> Result<T::Native> {
    let array = step.to_array()?;
    Ok(array.as_primitive::<T>().value(0))
}

/// Floors every integer or decimal of `x` to a multiple of the positive `step`.
fn ints<T: ArrowPrimitiveType>(
    x: &ArrayRef,
    step: &ScalarValue,
    shown: &ScalarValue,
) -> Result<ArrayRef>
where
    T::Native: ArrowNativeTypeOp,
{
    let step = native::<T>(step)?;
    if !T::Native::ZERO.is_lt(step) {
        return exec_err!("mask_round: step must be positive, got {shown}");
    }
    let out = x
        .as_primitive::<T>()
        .unary_opt::<_, T>(|v| floor_int(v, step))
        .with_data_type(x.data_type().clone());
    Ok(Arc::new(out))
}

/// [`ints`] for decimals: a floored value beyond the type's precision (−999.99 to a step of
/// 10 in DECIMAL(5, 2)) becomes NULL.
fn decimals<T: DecimalType>(
    x: &ArrayRef,
    step: &ScalarValue,
    shown: &ScalarValue,
    precision: u8,
) -> Result<ArrayRef>
where
    T::Native: ArrowNativeTypeOp,
{
    let out = ints::<T>(x, step, shown)?;
    Ok(Arc::new(
        out.as_primitive::<T>()
            .null_if_overflow_precision(precision)
            .with_data_type(x.data_type().clone()),
    ))
}

fn floats<T: ArrowPrimitiveType>(
    x: &ArrayRef,
    step: &ScalarValue,
    shown: &ScalarValue,
    floor: impl Fn(T::Native, T::Native) -> T::Native,
    as_f64: impl Fn(T::Native) -> f64,
) -> Result<ArrayRef> {
    let step = native::<T>(step)?;
    let s = as_f64(step);
    if !(s.is_finite() && s > 0.0) {
        return exec_err!("mask_round: step must be positive and finite, got {shown}");
    }
    Ok(Arc::new(
        x.as_primitive::<T>().unary::<_, T>(|v| floor(v, step)),
    ))
}

/// `step` cast to `x`'s type; for integers and decimals it must be exactly representable
/// (a step of 0.5 cannot floor an integer column).
fn step_for(step: &ScalarValue, x_type: &DataType) -> Result<ScalarValue> {
    let cast = match step.cast_to(x_type) {
        Ok(cast) if !cast.is_null() => cast,
        _ => return exec_err!("mask_round: step {step} does not fit the type {x_type}"),
    };
    if !x_type.is_floating() && cast.cast_to(&step.data_type()).ok().as_ref() != Some(step) {
        return exec_err!("mask_round: step {step} is not exactly representable as {x_type}");
    }
    Ok(cast)
}

fn floor_array(x: &ArrayRef, shown: &ScalarValue) -> Result<ArrayRef> {
    let dt = x.data_type();
    let step = &step_for(shown, dt)?;
    match dt {
        DataType::Int8 => ints::<Int8Type>(x, step, shown),
        DataType::Int16 => ints::<Int16Type>(x, step, shown),
        DataType::Int32 => ints::<Int32Type>(x, step, shown),
        DataType::Int64 => ints::<Int64Type>(x, step, shown),
        DataType::UInt8 => ints::<UInt8Type>(x, step, shown),
        DataType::UInt16 => ints::<UInt16Type>(x, step, shown),
        DataType::UInt32 => ints::<UInt32Type>(x, step, shown),
        DataType::UInt64 => ints::<UInt64Type>(x, step, shown),
        DataType::Decimal32(p, _) => decimals::<Decimal32Type>(x, step, shown, *p),
        DataType::Decimal64(p, _) => decimals::<Decimal64Type>(x, step, shown, *p),
        DataType::Decimal128(p, _) => decimals::<Decimal128Type>(x, step, shown, *p),
        DataType::Decimal256(p, _) => decimals::<Decimal256Type>(x, step, shown, *p),
        DataType::Float16 => floats::<Float16Type>(
            x,
            step,
            shown,
            |v, s| F16::from_f32(floor_f32(v.to_f32(), s.to_f32())),
            |s| f64::from(s.to_f32()),
        ),
        DataType::Float32 => floats::<Float32Type>(x, step, shown, floor_f32, f64::from),
        DataType::Float64 => floats::<Float64Type>(x, step, shown, floor_f64, |s| s),
        other => exec_err!("mask_round: expected a number, got {other}"),
    }
}

/// `mask_round(x, step)`.
pub(crate) struct MaskRound;

impl Function for MaskRound {
    const NAME: &'static str = "mask_round";

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(step) = kernel::constant(Self::NAME, "step", &args.args[1])? else {
            return kernel::all_null(args.return_field.data_type());
        };
        kernel::on_arrays(&args.args[..1], |arrays| floor_array(&arrays[0], step))
    }

    fn signature() -> Signature {
        Signature::user_defined(Volatility::Immutable)
    }

    fn coerce_types(arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let numeric = |dt: &DataType| dt.is_numeric() || dt.is_null();
        match arg_types {
            [x, step] if numeric(x) && numeric(step) => {
                let x = if x.is_null() {
                    DataType::Int64
                } else {
                    x.clone()
                };
                Ok(vec![x, step.clone()])
            }
            other => plan_err!(
                "mask_round expects mask_round(number, step) with an integer, float or \
                 decimal number and a numeric step, got {other:?}"
            ),
        }
    }

    fn return_type(arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(dt) => Ok(dt.clone()),
            None => plan_err!("mask_round expects two arguments"),
        }
    }

    fn doc() -> Documentation {
        Documentation::builder(
            DOC_SECTION_MATH,
            "Floors a number to a multiple of `step` (towards negative infinity: -1234 to a step \
             of 1000 gives -2000), keeping its type: integers, floats and decimals. `step` is a \
             positive constant, exactly representable in the number's type for integers and \
             decimals. NULL in gives NULL out; a result outside the type's range gives NULL.",
            "mask_round(expression, step)",
        )
        .with_sql_example(
            r#"```sql
> SELECT mask_round(123456, 10000), mask_round(121.4737, 0.01);
+-------------------------------------------+-----------------------------------------------+
| mask_round(Int64(123456),Int64(10000))    | mask_round(Float64(121.4737),Float64(0.01))   |
+-------------------------------------------+-----------------------------------------------+
| 120000                                    | 121.47                                        |
+-------------------------------------------+-----------------------------------------------+
```"#,
        )
        .with_argument("expression", "An integer, float or decimal.")
        .with_argument("step", "The grid size, a positive constant.")
        .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{invoke, lit, values};
    use datafusion::arrow::array::{
        Decimal128Array, Float32Array, Float64Array, Int8Array, Int64Array, UInt32Array,
    };

    fn array(a: impl datafusion::arrow::array::Array + 'static) -> ColumnarValue {
        ColumnarValue::Array(Arc::new(a))
    }

    /// `mask_round(x, step)` over the column `x`.
    fn floored(
        x: impl datafusion::arrow::array::Array + 'static,
        step: impl Into<ScalarValue>,
    ) -> Result<ColumnarValue> {
        invoke(&MaskRound.udf(), vec![array(x), lit(step.into())])
    }

    #[test]
    fn integers_floor_towards_negative_infinity() -> Result<()> {
        let input = Int64Array::from(vec![
            Some(123_456),
            Some(-1234),
            None,
            Some(0),
            Some(-1000),
            Some(i64::MIN),
            Some(i64::MAX),
        ]);
        let out = floored(input, 1000i64)?;
        assert_eq!(out.data_type(), DataType::Int64);
        let expected = [
            Some(123_000),
            Some(-2000),
            None,
            Some(0),
            Some(-1000),
            None,
            Some(9_223_372_036_854_775_000),
        ]
        .map(ScalarValue::Int64);
        assert_eq!(values(&out), expected);
        Ok(())
    }

    #[test]
    fn small_and_unsigned_integers_keep_their_type() -> Result<()> {
        let out = floored(Int8Array::from(vec![-128, 127, -1]), 10i64)?;
        assert_eq!(
            values(&out),
            [
                ScalarValue::Int8(None),
                ScalarValue::Int8(Some(120)),
                ScalarValue::Int8(Some(-10))
            ]
        );
        let out = floored(UInt32Array::from(vec![4_294_967_295]), 7i64)?;
        assert_eq!(values(&out), [ScalarValue::UInt32(Some(4_294_967_292))]);
        Ok(())
    }

    #[test]
    fn floats_and_decimals_floor_to_the_grid() -> Result<()> {
        let out = floored(
            Float64Array::from(vec![Some(121.4737), Some(-0.25), Some(f64::NAN), None]),
            0.5f64,
        )?;
        let got = values(&out);
        assert_eq!(got[0], ScalarValue::Float64(Some(121.0)));
        assert_eq!(got[1], ScalarValue::Float64(Some(-0.5)));
        assert!(matches!(got[2], ScalarValue::Float64(Some(v)) if v.is_nan()));
        assert_eq!(got[3], ScalarValue::Float64(None));
        let out = floored(Float32Array::from(vec![31.2304f32]), 0.1f64)?;
        let ScalarValue::Float32(Some(v)) = values(&out)[0] else {
            panic!("a Float32");
        };
        assert!((v - 31.2).abs() < 1e-5, "{v}");
        // DECIMAL(7, 2): 12345.67 and -0.01 to a step of 100; -99999.99 floors out of range.
        let dec = Decimal128Array::from(vec![Some(1_234_567), Some(-1), Some(-9_999_999)])
            .with_precision_and_scale(7, 2)?;
        let out = floored(dec, 100i64)?;
        assert_eq!(out.data_type(), DataType::Decimal128(7, 2));
        assert_eq!(
            values(&out),
            [
                ScalarValue::Decimal128(Some(1_230_000), 7, 2),
                ScalarValue::Decimal128(Some(-10_000), 7, 2),
                ScalarValue::Decimal128(None, 7, 2),
            ]
        );
        Ok(())
    }

    #[test]
    fn bad_steps_are_errors_not_panics() {
        let ints = || array(Int64Array::from(vec![5]));
        for (step, message) in [
            (ScalarValue::Int64(Some(0)), "step must be positive"),
            (ScalarValue::Int64(Some(-10)), "step must be positive"),
            (ScalarValue::Float64(Some(0.5)), "not exactly representable"),
        ] {
            let err = invoke(&MaskRound.udf(), vec![ints(), lit(step)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(message), "{err}");
        }
        let err = floored(Int8Array::from(vec![1]), 1000i64).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        for step in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let floats = array(Float64Array::from(vec![1.0]));
            let err = invoke(&MaskRound.udf(), vec![floats, lit(step.into())]).unwrap_err();
            assert!(err.to_string().contains("positive and finite"), "{err}");
        }
        let err = invoke(&MaskRound.udf(), vec![ints(), ints()]).unwrap_err();
        assert!(err.to_string().contains("step must be a constant"), "{err}");
    }

    #[test]
    fn scalar_in_scalar_out_and_null_step_gives_null() -> Result<()> {
        let out = invoke(
            &MaskRound.udf(),
            vec![lit(1999i32.into()), lit(1000i64.into())],
        )?;
        assert!(matches!(
            out,
            ColumnarValue::Scalar(ScalarValue::Int32(Some(1000)))
        ));
        let out = invoke(
            &MaskRound.udf(),
            vec![lit(1999i32.into()), lit(ScalarValue::Int64(None))],
        )?;
        assert_eq!(values(&out), [ScalarValue::Int32(None)]);
        Ok(())
    }
}
