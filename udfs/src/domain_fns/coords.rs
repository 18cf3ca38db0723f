//! The coordinate functions: the four transforms between WGS-84, GCJ-02 and BD-09
//! (`(lon, lat)` doubles in, a `struct<lon: double, lat: double>` out), each a [`Transform`],
//! with the plumbing they share, and `geo_distance_m`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, StructArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_MATH;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, Signature, Volatility,
};

use crate::domain::coords;
use crate::function::{Function, Transform};
use crate::kernel::{self, args, float64};

/// `n` numbers, as doubles; other numbers are cast.
pub(crate) fn doubles(n: usize) -> Signature {
    Signature::one_of(vec![args(vec![float64(); n])], Volatility::Immutable)
}

fn fields() -> Fields {
    Fields::from(vec![
        Field::new("lon", DataType::Float64, true),
        Field::new("lat", DataType::Float64, true),
    ])
}

/// `struct<lon: double, lat: double>`.
pub(crate) fn point_type() -> DataType {
    DataType::Struct(fields())
}

/// Applies `f` to every `(lon, lat)` row; a NULL in either gives a NULL point.
pub(crate) fn map_points(
    args: &[ColumnarValue],
    f: impl Fn(f64, f64) -> (f64, f64),
) -> Result<ColumnarValue> {
    build_points(args, |lon, lat, out_lon, out_lat| {
        for (&x, &y) in lon.iter().zip(lat) {
            // NULL rows hold arbitrary values; transforming them is cheaper than branching.
            let (x, y) = f(x, y);
            out_lon.push(x);
            out_lat.push(y);
        }
    })
}

/// [`map_points`] with a transform of two points at a time (whose two computations the
/// processor can overlap); `f` must give the results of two separate calls.
pub(crate) fn map_point_pairs(
    args: &[ColumnarValue],
    f: impl Fn((f64, f64), (f64, f64)) -> ((f64, f64), (f64, f64)),
) -> Result<ColumnarValue> {
    build_points(args, |lon, lat, out_lon, out_lat| {
        let (lon_pairs, lat_pairs) = (lon.chunks_exact(2), lat.chunks_exact(2));
        let (lon_rest, lat_rest) = (lon_pairs.remainder(), lat_pairs.remainder());
        for (x, y) in lon_pairs.zip(lat_pairs) {
            let (a, b) = f((x[0], y[0]), (x[1], y[1]));
            out_lon.extend([a.0, b.0]);
            out_lat.extend([a.1, b.1]);
        }
        if let (Some(&x), Some(&y)) = (lon_rest.first(), lat_rest.first()) {
            let (a, _) = f((x, y), (x, y));
            out_lon.push(a.0);
            out_lat.push(a.1);
        }
    })
}

/// The struct array of the points `fill` writes from the argument columns' values.
fn build_points(
    args: &[ColumnarValue],
    fill: impl FnOnce(&[f64], &[f64], &mut Vec<f64>, &mut Vec<f64>),
) -> Result<ColumnarValue> {
    kernel::on_arrays(args, |arrays| {
        let lon = arrays[0].as_primitive::<Float64Type>();
        let lat = arrays[1].as_primitive::<Float64Type>();
        let nulls = NullBuffer::union(lon.nulls(), lat.nulls());
        let rows = lon.len();
        let (mut out_lon, mut out_lat) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        fill(lon.values(), lat.values(), &mut out_lon, &mut out_lat);
        let children: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::new(out_lon.into(), nulls.clone())),
            Arc::new(Float64Array::new(out_lat.into(), nulls.clone())),
        ];
        Ok(Arc::new(StructArray::try_new(fields(), children, nulls)?))
    })
}

/// `wgs84_to_gcj02(lon, lat)`: WGS-84 to GCJ-02.
pub(crate) struct Wgs84ToGcj02;

impl Transform for Wgs84ToGcj02 {
    const NAME: &'static str = "wgs84_to_gcj02";
    const ABOUT: &'static str = "Converts a WGS-84 point (GPS) to GCJ-02, the offset system \
        of Chinese web maps (Amap, Tencent). Points outside China's rough bounding box are \
        returned unchanged; the box is a rectangle, so points in neighbouring countries \
        (Seoul, Hanoi) are shifted too.";
    const EXAMPLE: [&'static str; 2] = [
        "121.4737, 31.2304",
        "{lon: 121.47822305927693, lat: 31.22845773757727}",
    ];

    fn convert(args: &[ColumnarValue]) -> Result<ColumnarValue> {
        map_points(args, coords::wgs84_to_gcj02)
    }
}

/// `gcj02_to_wgs84(lon, lat)`: GCJ-02 to WGS-84.
pub(crate) struct Gcj02ToWgs84;

impl Transform for Gcj02ToWgs84 {
    const NAME: &'static str = "gcj02_to_wgs84";
    const ABOUT: &'static str = "Converts a GCJ-02 point (Chinese web maps) back to WGS-84, \
        solving the forward transform to better than 1e-8 degrees by a Newton step from the \
        usual one-step inverse (which alone is off by up to about 2 m). Points outside \
        China's rough bounding box are returned unchanged.";
    const EXAMPLE: [&'static str; 2] = [
        "121.47822305927693, 31.22845773757727",
        "{lon: 121.4737, lat: 31.2304}",
    ];

    fn convert(args: &[ColumnarValue]) -> Result<ColumnarValue> {
        // Two points at a time, so that the processor overlaps their Newton steps.
        map_point_pairs(args, coords::gcj02_to_wgs84_pair)
    }
}

/// `gcj02_to_bd09(lon, lat)`: GCJ-02 to BD-09.
pub(crate) struct Gcj02ToBd09;

impl Transform for Gcj02ToBd09 {
    const NAME: &'static str = "gcj02_to_bd09";
    const ABOUT: &'static str = "Converts a GCJ-02 point to BD-09, Baidu Maps' coordinate \
        system (a further transform of GCJ-02, about 900 m in Shanghai). Applies everywhere, \
        as Baidu does.";
    const EXAMPLE: [&'static str; 2] = [
        "121.47822305927693, 31.22845773757727",
        "{lon: 121.484781468503, lat: 31.234310593689997}",
    ];

    fn convert(args: &[ColumnarValue]) -> Result<ColumnarValue> {
        map_points(args, coords::gcj02_to_bd09)
    }
}

/// `bd09_to_gcj02(lon, lat)`: BD-09 to GCJ-02.
pub(crate) struct Bd09ToGcj02;

impl Transform for Bd09ToGcj02 {
    const NAME: &'static str = "bd09_to_gcj02";
    const ABOUT: &'static str = "Converts a BD-09 point (Baidu Maps) back to GCJ-02, \
        iterating the forward transform until it agrees to better than 1e-8 degrees (Baidu's \
        one-step inverse is off by up to about 0.1 m).";
    const EXAMPLE: [&'static str; 2] = [
        "121.484781468503, 31.234310593689997",
        "{lon: 121.47822305927693, lat: 31.22845773757727}",
    ];

    fn convert(args: &[ColumnarValue]) -> Result<ColumnarValue> {
        map_points(args, coords::bd09_to_gcj02)
    }
}

/// The distances between the points of the columns `[lon1, lat1, lon2, lat2]`; NULL where
/// any of them is NULL.
fn distances(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let [lon1, lat1, lon2, lat2] = [0, 1, 2, 3].map(|i| arrays[i].as_primitive::<Float64Type>());
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
}

/// `geo_distance_m(lon1, lat1, lon2, lat2)`: great-circle distance in metres.
pub(crate) struct GeoDistanceM;

impl Function for GeoDistanceM {
    const NAME: &'static str = "geo_distance_m";

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::on_arrays(&args.args, distances)
    }

    fn signature() -> Signature {
        doubles(4)
    }

    fn return_type(_arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn doc() -> Documentation {
        Documentation::builder(
            DOC_SECTION_MATH,
            "The great-circle (haversine) distance in metres between two points given as \
             longitude and latitude in degrees, on a sphere of radius 6 371 000 m. Both points \
             should be in the same coordinate system; GCJ-02 and WGS-84 differ by about 500 m \
             in Shanghai. NULL when any argument is NULL.",
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
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use datafusion::arrow::array::{Array, AsArray, Float64Array};
    use datafusion::arrow::datatypes::Float64Type;
    use datafusion::logical_expr::ColumnarValue;
    use std::sync::Arc;

    /// A Float64 column.
    pub(crate) fn column(values: &[Option<f64>]) -> ColumnarValue {
        ColumnarValue::Array(Arc::new(Float64Array::from(values.to_vec())))
    }

    /// The rows of a point result, `None` for a NULL point.
    pub(crate) fn points(out: &ColumnarValue) -> Vec<Option<(f64, f64)>> {
        let array = out.to_array(1).expect("result converts to an array");
        let s = array.as_struct();
        let lon = s.column(0).as_primitive::<Float64Type>();
        let lat = s.column(1).as_primitive::<Float64Type>();
        (0..s.len())
            .map(|i| s.is_valid(i).then(|| (lon.value(i), lat.value(i))))
            .collect()
    }

    #[track_caller]
    pub(crate) fn assert_close(got: Option<(f64, f64)>, want: (f64, f64), tol: f64) {
        let (lon, lat) = got.expect("a point, not NULL");
        assert!(
            (lon - want.0).abs() <= tol && (lat - want.1).abs() <= tol,
            "got ({lon}, {lat}), want {want:?} (tolerance {tol})"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{assert_close, column, points};
    use super::*;
    use crate::domain::test_vectors::{cases, point};
    use crate::testing::{invoke, lit, values};
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::ScalarUDF;

    /// Forward transforms match the vectors to this, in degrees.
    const FORWARD_TOL: f64 = 1e-9;
    /// Inverses iterate to better than this, in degrees.
    const INVERSE_TOL: f64 = 1e-8;

    /// Each transform, the systems of the vectors' points it converts from and to, and how
    /// close it comes.
    fn transforms() -> [(ScalarUDF, &'static str, &'static str, f64); 4] {
        [
            (Wgs84ToGcj02.udf(), "wgs84", "gcj02", FORWARD_TOL),
            (Gcj02ToWgs84.udf(), "gcj02", "wgs84", INVERSE_TOL),
            (Gcj02ToBd09.udf(), "gcj02", "bd09", FORWARD_TOL),
            (Bd09ToGcj02.udf(), "bd09", "gcj02", INVERSE_TOL),
        ]
    }

    #[test]
    fn shanghai_vectors_convert_and_nulls_give_null() -> Result<()> {
        for (f, from, to, tol) in transforms() {
            let inputs: Vec<_> = cases("coords").iter().map(|c| point(c, from)).collect();
            let mut lon: Vec<_> = inputs.iter().map(|p| Some(p.0)).collect();
            let mut lat: Vec<_> = inputs.iter().map(|p| Some(p.1)).collect();
            lon.extend([None, Some(121.0)]);
            lat.extend([Some(31.0), None]);
            let out = invoke(&f, vec![column(&lon), column(&lat)])?;
            assert_eq!(out.data_type(), point_type());
            let got = points(&out);
            for (g, case) in got.iter().zip(cases("coords")) {
                assert_close(*g, point(case, to), tol);
            }
            assert_eq!(got[inputs.len()..], [None, None], "{}", f.name());
        }
        Ok(())
    }

    #[test]
    fn points_outside_china_are_unchanged_by_gcj02() -> Result<()> {
        let pts: Vec<_> = cases("coords_outside_china")
            .iter()
            .map(|c| point(c, "wgs84"))
            .collect();
        let lon: Vec<_> = pts.iter().map(|p| Some(p.0)).collect();
        let lat: Vec<_> = pts.iter().map(|p| Some(p.1)).collect();
        for f in [Wgs84ToGcj02.udf(), Gcj02ToWgs84.udf()] {
            let out = invoke(&f, vec![column(&lon), column(&lat)])?;
            let want: Vec<_> = pts.iter().map(|p| Some(*p)).collect();
            assert_eq!(points(&out), want, "{}", f.name());
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
            let out = invoke(&Gcj02ToWgs84.udf(), vec![column(&lon), column(&lat)])?;
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
        let case = &cases("coords")[0];
        for (f, from, to, tol) in transforms() {
            let (x, y) = point(case, from);
            let out = invoke(&f, vec![lit(x.into()), lit(y.into())])?;
            assert!(matches!(out, ColumnarValue::Scalar(ScalarValue::Struct(_))));
            assert_close(points(&out)[0], point(case, to), tol);
            let out = invoke(&f, vec![column(&[Some(x), Some(x)]), lit(y.into())])?;
            for got in points(&out) {
                assert_close(got, point(case, to), tol);
            }
            let out = invoke(&f, vec![lit(ScalarValue::Float64(None)), lit(y.into())])?;
            assert_eq!(points(&out), [None]);
        }
        Ok(())
    }

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
            &GeoDistanceM.udf(),
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
        let out = invoke(
            &GeoDistanceM.udf(),
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
            &GeoDistanceM.udf(),
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
}
