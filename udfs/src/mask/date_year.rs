//! `mask_date_year(d)`: a date or timestamp generalised to the first day of its year.

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray, temporal_conversions};
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, Date32Type, Date64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_DATETIME;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, Signature, Volatility,
};

use crate::domain::year_start_days;
use crate::function::Function;
use crate::kernel;

const SECS_PER_DAY: i64 = 86_400;

/// 1 January of the year of `days` (since 1970-01-01).
fn date32_year(days: i32) -> Option<i32> {
    i32::try_from(year_start_days(i64::from(days))).ok()
}

/// 1 January, 00:00, of the year of a count of `per_day` units since the epoch, in UTC;
/// `None` when that instant is out of range.
fn utc_year(value: i64, per_day: i64) -> Option<i64> {
    year_start_days(value.div_euclid(per_day)).checked_mul(per_day)
}

/// Seconds `tz` is ahead of UTC at `utc_secs`.
fn offset_secs(tz: Tz, utc_secs: i64) -> Option<i64> {
    let local =
        temporal_conversions::as_datetime_with_timezone::<TimestampSecondType>(utc_secs, tz)?;
    Some(local.naive_local().and_utc().timestamp() - utc_secs)
}

/// 1 January, 00:00 local time in `tz`, of the local year of a count of `per_sec` units
/// since the epoch (an instant); `None` when out of range.
fn zoned_year(value: i64, per_sec: i64, tz: Tz) -> Option<i64> {
    let utc_secs = value.div_euclid(per_sec);
    let local_secs = utc_secs.checked_add(offset_secs(tz, utc_secs)?)?;
    let jan1_local =
        year_start_days(local_secs.div_euclid(SECS_PER_DAY)).checked_mul(SECS_PER_DAY)?;
    // The offset on 1 January may differ from the value's (summer time): take the offset at
    // the first guess, then settle on the one that holds at the instant found.
    let mut utc = jan1_local.checked_sub(offset_secs(tz, utc_secs)?)?;
    for _ in 0..2 {
        utc = jan1_local.checked_sub(offset_secs(tz, utc)?)?;
    }
    utc.checked_mul(per_sec)
}

fn timestamps<T: ArrowTimestampType>(
    array: &ArrayRef,
    tz: Option<&str>,
    per_sec: i64,
) -> Result<ArrayRef> {
    let array = array.as_primitive::<T>();
    let out: PrimitiveArray<T> = match tz {
        None => array.unary_opt(|v| utc_year(v, per_sec * SECS_PER_DAY)),
        Some(name) => {
            let zone: Tz = match name.parse() {
                Ok(zone) => zone,
                Err(e) => return exec_err!("mask_date_year: time zone {name:?}: {e}"),
            };
            array.unary_opt(|v| zoned_year(v, per_sec, zone))
        }
    };
    Ok(std::sync::Arc::new(out.with_timezone_opt(tz)))
}

fn year_start(array: &ArrayRef) -> Result<ArrayRef> {
    let out: ArrayRef = match array.data_type() {
        DataType::Date32 => std::sync::Arc::new(
            array
                .as_primitive::<Date32Type>()
                .unary_opt::<_, Date32Type>(date32_year),
        ),
        DataType::Date64 => std::sync::Arc::new(
            array
                .as_primitive::<Date64Type>()
                .unary_opt::<_, Date64Type>(|ms| utc_year(ms, SECS_PER_DAY * 1000)),
        ),
        DataType::Timestamp(unit, tz) => {
            let tz = tz.as_deref();
            match unit {
                TimeUnit::Second => timestamps::<TimestampSecondType>(array, tz, 1)?,
                TimeUnit::Millisecond => timestamps::<TimestampMillisecondType>(array, tz, 1_000)?,
                TimeUnit::Microsecond => {
                    timestamps::<TimestampMicrosecondType>(array, tz, 1_000_000)?
                }
                TimeUnit::Nanosecond => {
                    timestamps::<TimestampNanosecondType>(array, tz, 1_000_000_000)?
                }
            }
        }
        other => return exec_err!("mask_date_year: expected a date or timestamp, got {other}"),
    };
    Ok(out)
}

/// `mask_date_year(d)`.
pub(crate) struct MaskDateYear;

impl Function for MaskDateYear {
    const NAME: &'static str = "mask_date_year";

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::on_arrays(&args.args, |arrays| year_start(&arrays[0]))
    }

    fn signature() -> Signature {
        Signature::user_defined(Volatility::Immutable)
    }

    fn coerce_types(arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [dt @ (DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _))] => {
                Ok(vec![dt.clone()])
            }
            [DataType::Null | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View] => {
                Ok(vec![DataType::Date32])
            }
            other => plan_err!(
                "mask_date_year expects one date or timestamp argument: \
                 mask_date_year(Date32 | Date64 | Timestamp), got {other:?}"
            ),
        }
    }

    fn return_type(arg_types: &[DataType]) -> Result<DataType> {
        kernel::type_of_only_argument(Self::NAME, arg_types)
    }

    fn doc() -> Documentation {
        Documentation::builder(
            DOC_SECTION_DATETIME,
            "Generalises a date or timestamp to 1 January of its year (00:00 for a timestamp, in \
             its own time zone when it has one), keeping its type: Date32, Date64 and timestamps \
             of every unit and zone. A string is read as a date. NULL in gives NULL out; a value \
             whose 1 January lies outside its type's range gives NULL.",
            "mask_date_year(expression)",
        )
        .with_sql_example(
            r#"```sql
> SELECT mask_date_year('1985-03-12');
+-------------------------------------+
| mask_date_year(Utf8("1985-03-12"))  |
+-------------------------------------+
| 1985-01-01                          |
+-------------------------------------+
> SELECT mask_date_year(TIMESTAMP '2001-02-28 10:11:12');
-- 2001-01-01T00:00:00
```"#,
        )
        .with_argument("expression", "A date or timestamp.")
        .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::days_from_civil;
    use crate::testing::{invoke, lit, values};
    use datafusion::arrow::array::{Date64Array, TimestampMicrosecondArray};
    use datafusion::common::ScalarValue;
    use std::sync::Arc;

    fn day(y: i32, m: u32, d: u32) -> i32 {
        days_from_civil(y, m, d)
    }

    #[test]
    fn dates_become_the_first_of_january() -> Result<()> {
        let input = ColumnarValue::Array(Arc::new(PrimitiveArray::<Date32Type>::from(vec![
            Some(day(1985, 3, 12)),
            None,
            Some(day(2000, 2, 29)),
            Some(day(1969, 12, 31)),
            Some(day(2024, 1, 1)),
            Some(i32::MIN),
        ])));
        let out = invoke(&MaskDateYear.udf(), vec![input])?;
        assert_eq!(out.data_type(), DataType::Date32);
        let expected = [
            Some(day(1985, 1, 1)),
            None,
            Some(day(2000, 1, 1)),
            Some(day(1969, 1, 1)),
            Some(day(2024, 1, 1)),
            None,
        ]
        .map(ScalarValue::Date32);
        assert_eq!(values(&out), expected);
        Ok(())
    }

    #[test]
    fn date64_and_scalars_keep_their_type() -> Result<()> {
        let ms = |d: i32| i64::from(d) * 86_400_000;
        let input = ColumnarValue::Array(Arc::new(Date64Array::from(vec![
            Some(ms(day(1990, 7, 1)) + 3_600_000),
            None,
        ])));
        let out = invoke(&MaskDateYear.udf(), vec![input])?;
        assert_eq!(
            values(&out),
            [
                ScalarValue::Date64(Some(ms(day(1990, 1, 1)))),
                ScalarValue::Date64(None)
            ]
        );
        let out = invoke(
            &MaskDateYear.udf(),
            vec![lit(ScalarValue::Date32(Some(day(2017, 4, 1))))],
        )?;
        let ColumnarValue::Scalar(ScalarValue::Date32(Some(d))) = out else {
            panic!("expected a Date32 scalar, got {out:?}");
        };
        assert_eq!(d, day(2017, 1, 1));
        Ok(())
    }

    #[test]
    fn timestamps_of_every_unit_keep_unit_and_zone() -> Result<()> {
        let secs = i64::from(day(2010, 3, 20)) * 86_400 + 13 * 3600 + 5;
        let jan1 = i64::from(day(2010, 1, 1)) * 86_400;
        let cases = [
            ScalarValue::TimestampSecond(Some(secs), None),
            ScalarValue::TimestampMillisecond(Some(secs * 1_000), None),
            ScalarValue::TimestampMicrosecond(Some(secs * 1_000_000), Some("UTC".into())),
            ScalarValue::TimestampNanosecond(Some(secs * 1_000_000_000), Some("+00:00".into())),
        ];
        let expected = [
            ScalarValue::TimestampSecond(Some(jan1), None),
            ScalarValue::TimestampMillisecond(Some(jan1 * 1_000), None),
            ScalarValue::TimestampMicrosecond(Some(jan1 * 1_000_000), Some("UTC".into())),
            ScalarValue::TimestampNanosecond(Some(jan1 * 1_000_000_000), Some("+00:00".into())),
        ];
        for (input, want) in cases.into_iter().zip(expected) {
            let out = invoke(&MaskDateYear.udf(), vec![lit(input)])?;
            assert_eq!(values(&out), [want]);
        }
        Ok(())
    }

    #[test]
    fn zoned_timestamps_use_their_local_year() -> Result<()> {
        // 2020-12-31 20:00 UTC is already 2021 in Shanghai: its year starts at
        // 2021-01-01 00:00 +08:00, i.e. 2020-12-31 16:00 UTC.
        let utc = i64::from(day(2020, 12, 31)) * 86_400 + 20 * 3600;
        let shanghai_2021 = i64::from(day(2021, 1, 1)) * 86_400 - 8 * 3600;
        // New York in summer time (UTC-4) maps to its 1 January in winter time (UTC-5).
        let ny_july = i64::from(day(2021, 7, 1)) * 86_400;
        let ny_2021 = i64::from(day(2021, 1, 1)) * 86_400 + 5 * 3600;
        let input = TimestampMicrosecondArray::from(vec![Some(utc * 1_000_000), None])
            .with_timezone("Asia/Shanghai");
        let out = invoke(
            &MaskDateYear.udf(),
            vec![ColumnarValue::Array(Arc::new(input))],
        )?;
        let zone = Some(Arc::from("Asia/Shanghai"));
        assert_eq!(
            values(&out),
            [
                ScalarValue::TimestampMicrosecond(Some(shanghai_2021 * 1_000_000), zone.clone()),
                ScalarValue::TimestampMicrosecond(None, zone)
            ]
        );
        let out = invoke(
            &MaskDateYear.udf(),
            vec![lit(ScalarValue::TimestampSecond(
                Some(ny_july),
                Some("America/New_York".into()),
            ))],
        )?;
        assert_eq!(
            values(&out),
            [ScalarValue::TimestampSecond(
                Some(ny_2021),
                Some("America/New_York".into())
            )]
        );
        Ok(())
    }

    #[test]
    fn out_of_range_years_are_null_not_panics() -> Result<()> {
        let out = invoke(
            &MaskDateYear.udf(),
            vec![lit(ScalarValue::TimestampNanosecond(Some(i64::MIN), None))],
        )?;
        assert_eq!(values(&out), [ScalarValue::TimestampNanosecond(None, None)]);
        let out = invoke(
            &MaskDateYear.udf(),
            vec![lit(ScalarValue::TimestampSecond(
                Some(i64::MAX),
                Some("Asia/Shanghai".into()),
            ))],
        )?;
        assert_eq!(
            values(&out),
            [ScalarValue::TimestampSecond(
                None,
                Some("Asia/Shanghai".into())
            )]
        );
        Ok(())
    }
}
