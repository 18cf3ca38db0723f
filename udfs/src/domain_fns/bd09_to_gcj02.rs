//! `bd09_to_gcj02(lon, lat)`: BD-09 to GCJ-02.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use super::point;
use crate::domain::coords;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_OTHER,
        "Converts a BD-09 point (Baidu Maps) back to GCJ-02, iterating the forward transform until it agrees to better than 1e-8 degrees (Baidu's one-step inverse is off by up to about 0.1 m). Returns struct<lon: double, lat: double>; NULL when either argument is \
         NULL.",
        "bd09_to_gcj02(lon, lat)",
    )
    .with_sql_example(
        r#"```sql
> SELECT bd09_to_gcj02(121.484781468503, 31.234310593689997);
-- {lon: 121.47822305927693, lat: 31.22845773757727}
> SELECT get_field(bd09_to_gcj02(lon, lat), 'lon') AS lon, get_field(bd09_to_gcj02(lon, lat), 'lat') AS lat FROM stops;
```"#,
    )
    .with_argument("lon", "Longitude in degrees, east positive.")
    .with_argument("lat", "Latitude in degrees, north positive.")
    .build()
});

/// `bd09_to_gcj02(lon, lat)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Bd09ToGcj02Func {
    signature: Signature,
}

impl Default for Bd09ToGcj02Func {
    fn default() -> Self {
        Self::new()
    }
}

impl Bd09ToGcj02Func {
    pub fn new() -> Self {
        Self {
            signature: point::signature(),
        }
    }
}

impl ScalarUDFImpl for Bd09ToGcj02Func {
    fn name(&self) -> &str {
        "bd09_to_gcj02"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(point::point_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        point::map_points(&args.args, coords::bd09_to_gcj02)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, point};
    use crate::domain_fns::point::test_support::{assert_close, column, points};
    use crate::testing::{invoke, lit, sql_value};
    use datafusion::common::ScalarValue;

    /// Inverses iterate to better than this, in degrees.
    const INVERSE_TOL: f64 = 1e-8;

    #[test]
    fn shanghai_vectors_convert() -> Result<()> {
        let inputs: Vec<_> = cases("coords").iter().map(|c| point(c, "bd09")).collect();
        let mut lon: Vec<_> = inputs.iter().map(|p| Some(p.0)).collect();
        let mut lat: Vec<_> = inputs.iter().map(|p| Some(p.1)).collect();
        lon.extend([None, Some(121.0)]);
        lat.extend([Some(31.0), None]);
        let out = invoke(&Bd09ToGcj02Func::new(), vec![column(&lon), column(&lat)])?;
        assert_eq!(out.data_type(), point::point_type());
        let got = points(&out);
        for (g, case) in got.iter().zip(cases("coords")) {
            assert_close(*g, point(case, "gcj02"), INVERSE_TOL);
        }
        assert_eq!(got[inputs.len()..], [None, None]);
        Ok(())
    }

    #[test]
    fn scalars_give_a_scalar_and_a_scalar_can_meet_a_column() -> Result<()> {
        let f = Bd09ToGcj02Func::new();
        let case = &cases("coords")[0];
        let (x, y) = point(case, "bd09");
        let out = invoke(&f, vec![lit(x.into()), lit(y.into())])?;
        assert!(matches!(out, ColumnarValue::Scalar(ScalarValue::Struct(_))));
        assert_close(points(&out)[0], point(case, "gcj02"), INVERSE_TOL);
        let out = invoke(&f, vec![column(&[Some(x), Some(x)]), lit(y.into())])?;
        for got in points(&out) {
            assert_close(got, point(case, "gcj02"), INVERSE_TOL);
        }
        let out = invoke(&f, vec![lit(ScalarValue::Float64(None)), lit(y.into())])?;
        assert_eq!(points(&out), [None]);
        Ok(())
    }

    #[tokio::test]
    async fn sql_converts_integers_and_refuses_text() -> Result<()> {
        let got = sql_value("SELECT get_field(bd09_to_gcj02(121, 31), 'lon') > 120").await?;
        assert_eq!(got, "true");
        let got = sql_value("SELECT arrow_typeof(bd09_to_gcj02(121.5, 31.2))").await?;
        assert_eq!(got, "Struct(\"lon\": Float64, \"lat\": Float64)");
        for sql in [
            "SELECT bd09_to_gcj02('a', 'b')",
            "SELECT bd09_to_gcj02(121.0)",
        ] {
            let err = sql_value(sql).await.unwrap_err().to_string();
            assert!(err.contains("bd09_to_gcj02"), "{sql}: {err}");
        }
        Ok(())
    }
}
