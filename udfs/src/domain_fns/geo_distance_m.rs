//! `geo_distance_m(lon1, lat1, lon2, lat2)`: great-circle distance in metres.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Float64Array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_MATH;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::domain::coords;
use crate::kernel::{self, args, float64};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_MATH,
        "The great-circle (haversine) distance in metres between two points given as \
         longitude and latitude in degrees, on a sphere of radius 6 371 000 m. Both points \
         should be in the same coordinate system; GCJ-02 and WGS-84 differ by about 500 m in \
         Shanghai. NULL when any argument is NULL.",
        "geo_distance_m(lon1, lat1, lon2, lat2)",
    )
    .with_sql_example(
        r#"```sql
> SELECT round(geo_distance_m(121.4737, 31.2304, 121.4997, 31.2397));
+-----------------------------------------------------------------------------------------+
| round(geo_distance_m(Float64(121.4737),Float64(31.2304),Float64(121.4997),Float64(31.2397))) |
+-----------------------------------------------------------------------------------------+
| 2680.0                                                                                  |
+-----------------------------------------------------------------------------------------+
```"#,
    )
    .with_argument("lon1", "Longitude of the first point, degrees.")
    .with_argument("lat1", "Latitude of the first point, degrees.")
    .with_argument("lon2", "Longitude of the second point, degrees.")
    .with_argument("lat2", "Latitude of the second point, degrees.")
    .build()
});

/// `geo_distance_m(lon1, lat1, lon2, lat2)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GeoDistanceMFunc {
    signature: Signature,
}

impl Default for GeoDistanceMFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl GeoDistanceMFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![args(vec![float64(), float64(), float64(), float64()])],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for GeoDistanceMFunc {
    fn name(&self) -> &str {
        "geo_distance_m"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::on_arrays(&args.args, |arrays| {
            let [lon1, lat1, lon2, lat2] =
                [0, 1, 2, 3].map(|i| arrays[i].as_primitive::<Float64Type>());
            let nulls = [lat1, lon2, lat2]
                .iter()
                .fold(lon1.nulls().cloned(), |acc, a| {
                    NullBuffer::union(acc.as_ref(), a.nulls())
                });
            let values: Vec<f64> = (lon1.values().iter().zip(lat1.values().iter()))
                .zip(lon2.values().iter().zip(lat2.values().iter()))
                .map(|((&x1, &y1), (&x2, &y2))| coords::haversine_m(x1, y1, x2, y2))
                .collect();
            Ok(Arc::new(Float64Array::new(values.into(), nulls)))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, point};
    use crate::domain_fns::point::test_support::column;
    use crate::testing::{invoke, lit, sql_value, values};
    use datafusion::common::ScalarValue;

    #[test]
    fn vector_offsets_are_the_published_distances() -> Result<()> {
        let cs = cases("coords");
        let col = |key: &str, i: usize| -> ColumnarValue {
            column(
                &cs.iter()
                    .map(|c| {
                        Some(if i == 0 {
                            point(c, key).0
                        } else {
                            point(c, key).1
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let out = invoke(
            &GeoDistanceMFunc::new(),
            vec![
                col("wgs84", 0),
                col("wgs84", 1),
                col("gcj02", 0),
                col("gcj02", 1),
            ],
        )?;
        for (got, case) in values(&out).iter().zip(cs) {
            let ScalarValue::Float64(Some(got)) = got else {
                panic!("a distance, got {got:?}");
            };
            let want = case["offset_m_wgs_to_gcj"].as_f64().unwrap();
            assert!((got - want).abs() < 0.01, "{got} vs {want}");
        }
        Ok(())
    }

    #[test]
    fn any_null_gives_null_and_scalars_give_a_scalar() -> Result<()> {
        let f = GeoDistanceMFunc::new();
        let out = invoke(
            &f,
            vec![
                column(&[Some(121.0), None, Some(121.0)]),
                lit(31.0f64.into()),
                column(&[Some(121.0), Some(121.0), None]),
                lit(32.0f64.into()),
            ],
        )?;
        let got = values(&out);
        assert!(matches!(got[0], ScalarValue::Float64(Some(d)) if (d - 111_194.93).abs() < 0.01));
        assert_eq!(
            got[1..],
            [ScalarValue::Float64(None), ScalarValue::Float64(None)]
        );
        let out = invoke(
            &f,
            vec![
                lit(0.0f64.into()),
                lit(0.0f64.into()),
                lit(0.0f64.into()),
                lit(ScalarValue::Float64(None)),
            ],
        )?;
        assert!(matches!(
            out,
            ColumnarValue::Scalar(ScalarValue::Float64(None))
        ));
        Ok(())
    }

    #[tokio::test]
    async fn sql_measures_between_two_landmarks() -> Result<()> {
        assert_eq!(
            sql_value("SELECT round(geo_distance_m(121.4737, 31.2304, 121.4997, 31.2397))").await?,
            "2680"
        );
        let err = sql_value("SELECT geo_distance_m(1, 2, 3)")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("geo_distance_m"), "{err}");
        Ok(())
    }
}
