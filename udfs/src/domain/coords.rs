//! WGS-84, GCJ-02 and BD-09 coordinates, always `(lon, lat)` in degrees.
//!
//! GCJ-02 is the obfuscated offset of WGS-84 that Chinese web maps use; BD-09 is Baidu's
//! further transform of GCJ-02. Both forward transforms are closed formulas; their inverses
//! are not, so [`gcj02_to_wgs84`] and [`bd09_to_gcj02`] iterate the forward transform until
//! the residual is below 1e-10° (the one-step approximations are off by up to about 2 m).

use std::f64::consts::PI;

/// Semi-major axis of the Krasovsky 1940 ellipsoid used by GCJ-02, metres.
pub const KRASOVSKY_A: f64 = 6_378_245.0;
/// First eccentricity squared of that ellipsoid.
pub const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943;
/// Mean Earth radius used by [`haversine_m`], metres.
pub const EARTH_RADIUS_M: f64 = 6_371_000.0;

const BD_X_PI: f64 = PI * 3000.0 / 180.0;
/// Convergence threshold of the iterative inverses, degrees.
const INVERSE_EPSILON: f64 = 1e-10;
const INVERSE_MAX_STEPS: usize = 30;

/// Whether a point lies outside the rough bounding box in which GCJ-02 applies. The box is
/// a rectangle, so points in neighbouring countries (Seoul, Hanoi) are "inside" it.
pub fn out_of_china(lon: f64, lat: f64) -> bool {
    !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat)
}

fn transform_lat(x: f64, y: f64) -> f64 {
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn transform_lon(x: f64, y: f64) -> f64 {
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// The GCJ-02 offset `(dlon, dlat)` at a WGS-84 point.
fn gcj02_delta(lon: f64, lat: f64) -> (f64, f64) {
    let dlat = transform_lat(lon - 105.0, lat - 35.0);
    let dlon = transform_lon(lon - 105.0, lat - 35.0);
    let rad_lat = lat / 180.0 * PI;
    let magic = 1.0 - KRASOVSKY_EE * rad_lat.sin() * rad_lat.sin();
    let sqrt_magic = magic.sqrt();
    let dlat = dlat * 180.0 / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * PI);
    let dlon = dlon * 180.0 / (KRASOVSKY_A / sqrt_magic * rad_lat.cos() * PI);
    (dlon, dlat)
}

/// WGS-84 → GCJ-02; points outside China's bounding box are returned unchanged.
pub fn wgs84_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lon, lat) {
        return (lon, lat);
    }
    let (dlon, dlat) = gcj02_delta(lon, lat);
    (lon + dlon, lat + dlat)
}

/// One-step GCJ-02 → WGS-84 (subtracts the offset taken at the GCJ-02 point): error up to
/// about 2 m. Prefer [`gcj02_to_wgs84`].
pub fn gcj02_to_wgs84_approx(lon: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lon, lat) {
        return (lon, lat);
    }
    let (dlon, dlat) = gcj02_delta(lon, lat);
    (lon - dlon, lat - dlat)
}

/// Solves `forward(p) = target` by fixed-point iteration from `start`.
fn invert(
    target: (f64, f64),
    start: (f64, f64),
    forward: fn(f64, f64) -> (f64, f64),
) -> (f64, f64) {
    let (mut lon, mut lat) = start;
    for _ in 0..INVERSE_MAX_STEPS {
        let (f_lon, f_lat) = forward(lon, lat);
        let (d_lon, d_lat) = (target.0 - f_lon, target.1 - f_lat);
        lon += d_lon;
        lat += d_lat;
        if d_lon.abs() < INVERSE_EPSILON && d_lat.abs() < INVERSE_EPSILON {
            break;
        }
    }
    (lon, lat)
}

/// GCJ-02 → WGS-84, iterating the forward transform to below 1e-10°. Points outside
/// China's bounding box are returned unchanged.
pub fn gcj02_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lon, lat) {
        return (lon, lat);
    }
    invert((lon, lat), gcj02_to_wgs84_approx(lon, lat), wgs84_to_gcj02)
}

/// GCJ-02 → BD-09.
pub fn gcj02_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let z = (lon * lon + lat * lat).sqrt() + 0.000_02 * (lat * BD_X_PI).sin();
    let theta = lat.atan2(lon) + 0.000_003 * (lon * BD_X_PI).cos();
    (z * theta.cos() + 0.0065, z * theta.sin() + 0.006)
}

/// Baidu's published one-step BD-09 → GCJ-02: error up to about 0.1 m. Prefer
/// [`bd09_to_gcj02`].
pub fn bd09_to_gcj02_approx(lon: f64, lat: f64) -> (f64, f64) {
    let (x, y) = (lon - 0.0065, lat - 0.006);
    let z = (x * x + y * y).sqrt() - 0.000_02 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) - 0.000_003 * (x * BD_X_PI).cos();
    (z * theta.cos(), z * theta.sin())
}

/// BD-09 → GCJ-02, iterating the forward transform to below 1e-10°.
pub fn bd09_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    invert((lon, lat), bd09_to_gcj02_approx(lon, lat), gcj02_to_bd09)
}

/// WGS-84 → BD-09 (through GCJ-02).
pub fn wgs84_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let (lon, lat) = wgs84_to_gcj02(lon, lat);
    gcj02_to_bd09(lon, lat)
}

/// BD-09 → WGS-84 (through GCJ-02, both steps iterative).
pub fn bd09_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    let (lon, lat) = bd09_to_gcj02(lon, lat);
    gcj02_to_wgs84(lon, lat)
}

/// Great-circle distance in metres on a sphere of radius [`EARTH_RADIUS_M`].
pub fn haversine_m(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = phi2 - phi1;
    let d_lambda = (lon2 - lon1).to_radians();
    let h = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, point};

    const FORWARD_TOL: f64 = 1e-9;
    const INVERSE_TOL: f64 = 1e-8;

    fn assert_close(got: (f64, f64), want: (f64, f64), tol: f64, what: &str) {
        assert!(
            (got.0 - want.0).abs() <= tol && (got.1 - want.1).abs() <= tol,
            "{what}: got {got:?}, want {want:?} (tolerance {tol})"
        );
    }

    #[test]
    fn shanghai_vectors_convert_both_ways() {
        for case in cases("coords") {
            let name = case["name"].as_str().unwrap();
            let (wgs, gcj, bd) = (
                point(case, "wgs84"),
                point(case, "gcj02"),
                point(case, "bd09"),
            );
            assert_close(wgs84_to_gcj02(wgs.0, wgs.1), gcj, FORWARD_TOL, name);
            assert_close(gcj02_to_bd09(gcj.0, gcj.1), bd, FORWARD_TOL, name);
            assert_close(wgs84_to_bd09(wgs.0, wgs.1), bd, FORWARD_TOL, name);
            assert_close(gcj02_to_wgs84(gcj.0, gcj.1), wgs, INVERSE_TOL, name);
            assert_close(bd09_to_gcj02(bd.0, bd.1), gcj, INVERSE_TOL, name);
            assert_close(bd09_to_wgs84(bd.0, bd.1), wgs, INVERSE_TOL, name);

            let approx = point(case, "inverse_approx_wgs84");
            assert_close(
                gcj02_to_wgs84_approx(gcj.0, gcj.1),
                approx,
                FORWARD_TOL,
                name,
            );
            let roundtrip = point(case, "bd09_to_gcj02_roundtrip");
            assert_close(
                bd09_to_gcj02_approx(bd.0, bd.1),
                roundtrip,
                FORWARD_TOL,
                name,
            );
        }
    }

    #[test]
    fn shanghai_vector_distances_match() {
        for case in cases("coords") {
            let name = case["name"].as_str().unwrap();
            let (wgs, gcj) = (point(case, "wgs84"), point(case, "gcj02"));
            let pairs = [
                (wgs, gcj, "offset_m_wgs_to_gcj"),
                (
                    wgs,
                    point(case, "inverse_approx_wgs84"),
                    "inverse_approx_error_m",
                ),
                (
                    gcj,
                    point(case, "bd09_to_gcj02_roundtrip"),
                    "bd09_roundtrip_error_m",
                ),
            ];
            for (a, b, key) in pairs {
                let want = case[key].as_f64().unwrap();
                let got = haversine_m(a.0, a.1, b.0, b.1);
                assert!((got - want).abs() < 0.01, "{name} {key}: {got} vs {want}");
            }
            let offset = haversine_m(wgs.0, wgs.1, gcj.0, gcj.1);
            assert!((460.0..=500.0).contains(&offset), "{name}: {offset}");
            let bd = point(case, "bd09");
            let bd_offset = haversine_m(gcj.0, gcj.1, bd.0, bd.1);
            assert!((880.0..=940.0).contains(&bd_offset), "{name}: {bd_offset}");
        }
    }

    #[test]
    fn points_outside_china_are_unchanged() {
        for case in cases("coords_outside_china") {
            let name = case["name"].as_str().unwrap();
            let wgs = point(case, "wgs84");
            assert!(out_of_china(wgs.0, wgs.1), "{name}");
            assert_eq!(wgs84_to_gcj02(wgs.0, wgs.1), point(case, "gcj02"), "{name}");
            assert_eq!(gcj02_to_wgs84(wgs.0, wgs.1), wgs, "{name}");
        }
    }

    #[test]
    fn bounding_box_neighbours_are_shifted_like_china() {
        for case in cases("coords_bbox_false_positive") {
            let name = case["name"].as_str().unwrap();
            let (wgs, gcj) = (point(case, "wgs84"), point(case, "gcj02"));
            assert!(!out_of_china(wgs.0, wgs.1), "{name}");
            assert_close(wgs84_to_gcj02(wgs.0, wgs.1), gcj, FORWARD_TOL, name);
            assert_close(gcj02_to_wgs84(gcj.0, gcj.1), wgs, INVERSE_TOL, name);
            let offset = haversine_m(wgs.0, wgs.1, gcj.0, gcj.1);
            assert!(
                (offset - case["offset_m"].as_f64().unwrap()).abs() < 0.1,
                "{name}"
            );
        }
    }

    #[test]
    fn inverse_round_trips_over_a_shanghai_grid() {
        for i in 0..=20 {
            for j in 0..=20 {
                let lon = 120.85 + f64::from(i) * 0.05;
                let lat = 30.65 + f64::from(j) * 0.05;
                let (g_lon, g_lat) = wgs84_to_gcj02(lon, lat);
                assert_close(gcj02_to_wgs84(g_lon, g_lat), (lon, lat), 1e-9, "gcj grid");
                let (b_lon, b_lat) = gcj02_to_bd09(lon, lat);
                assert_close(bd09_to_gcj02(b_lon, b_lat), (lon, lat), 1e-9, "bd grid");
            }
        }
    }

    #[test]
    fn haversine_basics() {
        assert_eq!(haversine_m(121.47, 31.23, 121.47, 31.23), 0.0);
        // One degree of latitude on the mean sphere.
        let degree = haversine_m(121.0, 31.0, 121.0, 32.0);
        assert!((degree - 111_194.93).abs() < 0.01, "{degree}");
        // Antipodes: half the circumference, no NaN from rounding.
        let half = haversine_m(0.0, 0.0, 180.0, 0.0);
        assert!((half - PI * EARTH_RADIUS_M).abs() < 1e-6, "{half}");
    }
}
