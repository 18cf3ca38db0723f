//! Shared plumbing of the coordinate functions: `(lon, lat)` doubles in, a
//! `struct<lon: double, lat: double>` out.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, StructArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Signature, Volatility};

use crate::kernel::{self, args, float64};

/// `(lon, lat)` as doubles; other numbers are cast.
pub(crate) fn signature() -> Signature {
    Signature::one_of(
        vec![args(vec![float64(), float64()])],
        Volatility::Immutable,
    )
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
