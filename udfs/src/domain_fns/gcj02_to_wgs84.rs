//! `gcj02_to_wgs84(lon, lat)`: GCJ-02 to WGS-84.

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
        "Converts a GCJ-02 point (Chinese web maps) back to WGS-84, solving the forward transform to better than 1e-8 degrees by a Newton step from the usual one-step inverse (which alone is off by up to about 2 m). Points outside China's rough bounding box are returned unchanged. Returns struct<lon: double, lat: double>; NULL when either argument is \
         NULL.",
        "gcj02_to_wgs84(lon, lat)",
    )
    .with_sql_example(
        r#"```sql
> SELECT gcj02_to_wgs84(121.47822305927693, 31.22845773757727);
-- {lon: 121.4737, lat: 31.2304}
> SELECT get_field(gcj02_to_wgs84(lon, lat), 'lon') AS lon, get_field(gcj02_to_wgs84(lon, lat), 'lat') AS lat FROM stops;
```"#,
    )
    .with_argument("lon", "Longitude in degrees, east positive.")
    .with_argument("lat", "Latitude in degrees, north positive.")
    .build()
});

/// `gcj02_to_wgs84(lon, lat)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Gcj02ToWgs84Func {
    signature: Signature,
}

impl Default for Gcj02ToWgs84Func {
    fn default() -> Self {
        Self::new()
    }
}

impl Gcj02ToWgs84Func {
    pub fn new() -> Self {
        Self {
            signature: point::signature(),
        }
    }
}

impl ScalarUDFImpl for Gcj02ToWgs84Func {
    fn name(&self) -> &str {
        "gcj02_to_wgs84"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(point::point_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        point::map_point_pairs(&args.args, coords::gcj02_to_wgs84_pair)
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
        let inputs: Vec<_> = cases("coords").iter().map(|c| point(c, "gcj02")).collect();
        let mut lon: Vec<_> = inputs.iter().map(|p| Some(p.0)).collect();
        let mut lat: Vec<_> = inputs.iter().map(|p| Some(p.1)).collect();
        lon.extend([None, Some(121.0)]);
        lat.extend([Some(31.0), None]);
        let out = invoke(&Gcj02ToWgs84Func::new(), vec![column(&lon), column(&lat)])?;
        assert_eq!(out.data_type(), point::point_type());
        let got = points(&out);
        for (g, case) in got.iter().zip(cases("coords")) {
            assert_close(*g, point(case, "wgs84"), INVERSE_TOL);
        }
        assert_eq!(got[inputs.len()..], [None, None]);
        Ok(())
    }

    #[test]
    fn points_outside_china_are_unchanged() -> Result<()> {
        let pts: Vec<_> = cases("coords_outside_china")
            .iter()
            .map(|c| point(c, "wgs84"))
            .collect();
        let lon: Vec<_> = pts.iter().map(|p| Some(p.0)).collect();
        let lat: Vec<_> = pts.iter().map(|p| Some(p.1)).collect();
        let out = invoke(&Gcj02ToWgs84Func::new(), vec![column(&lon), column(&lat)])?;
        let got = points(&out);
        for (g, p) in got.into_iter().zip(&pts) {
            assert_eq!(g, Some(*p));
        }
        Ok(())
    }

    #[test]
    fn odd_and_even_lengths_give_the_single_point_results() -> Result<()> {
        for rows in [1usize, 2, 5, 8] {
            let pts: Vec<_> = (0..rows)
                .map(|i| (121.0 + i as f64 * 0.137, 31.0 + i as f64 * 0.071))
                .collect();
            let lon: Vec<_> = pts.iter().map(|p| Some(p.0)).collect();
            let lat: Vec<_> = pts.iter().map(|p| Some(p.1)).collect();
            let out = invoke(&Gcj02ToWgs84Func::new(), vec![column(&lon), column(&lat)])?;
            let want: Vec<_> = pts
                .iter()
                .map(|p| Some(coords::gcj02_to_wgs84(p.0, p.1)))
                .collect();
            assert_eq!(points(&out), want, "{rows} rows");
        }
        Ok(())
    }

    #[test]
    fn scalars_give_a_scalar_and_a_scalar_can_meet_a_column() -> Result<()> {
        let f = Gcj02ToWgs84Func::new();
        let case = &cases("coords")[0];
        let (x, y) = point(case, "gcj02");
        let out = invoke(&f, vec![lit(x.into()), lit(y.into())])?;
        assert!(matches!(out, ColumnarValue::Scalar(ScalarValue::Struct(_))));
        assert_close(points(&out)[0], point(case, "wgs84"), INVERSE_TOL);
        let out = invoke(&f, vec![column(&[Some(x), Some(x)]), lit(y.into())])?;
        for got in points(&out) {
            assert_close(got, point(case, "wgs84"), INVERSE_TOL);
        }
        let out = invoke(&f, vec![lit(ScalarValue::Float64(None)), lit(y.into())])?;
        assert_eq!(points(&out), [None]);
        Ok(())
    }

    #[tokio::test]
    async fn sql_converts_integers_and_refuses_text() -> Result<()> {
        let got = sql_value("SELECT get_field(gcj02_to_wgs84(121, 31), 'lon') > 120").await?;
        assert_eq!(got, "true");
        let got = sql_value("SELECT arrow_typeof(gcj02_to_wgs84(121.5, 31.2))").await?;
        assert_eq!(got, "Struct(\"lon\": Float64, \"lat\": Float64)");
        for sql in [
            "SELECT gcj02_to_wgs84('a', 'b')",
            "SELECT gcj02_to_wgs84(121.0)",
        ] {
            let err = sql_value(sql).await.unwrap_err().to_string();
            assert!(err.contains("gcj02_to_wgs84"), "{sql}: {err}");
        }
        Ok(())
    }
}
