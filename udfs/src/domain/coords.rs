//! WGS-84, GCJ-02 and BD-09 coordinates, always `(lon, lat)` in degrees.
//!
//! GCJ-02 is the obfuscated offset of WGS-84 that Chinese web maps use; BD-09 is Baidu's
//! further transform of GCJ-02. Both forward transforms are closed formulas; their inverses
//! are not, so [`gcj02_to_wgs84`] (by a Newton step) and [`bd09_to_gcj02`] (by iteration)
//! solve the forward transform to within about 1e-10° (the one-step approximations are off
//! by up to about 2 m).

use std::f64::consts::PI;

/// Semi-major axis of the Krasovsky 1940 ellipsoid used by GCJ-02, metres.
pub const KRASOVSKY_A: f64 = 6_378_245.0;
/// First eccentricity squared of that ellipsoid.
pub const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943;
/// Mean Earth radius used by [`haversine_m`], metres.
pub const EARTH_RADIUS_M: f64 = 6_371_000.0;

const BD_X_PI: f64 = PI * 3000.0 / 180.0;
// The iterative inverses stop once a step moves the point by less than an epsilon. Each step
// shrinks the error by the transform's contraction factor (about 0.006 for GCJ-02 and 0.02
// for BD-09), so the error left is a small fraction of the last step. Over 20 000 random
// points of the China box the largest error was 1.7e-10° for BD-09 (epsilon 1e-8, three
// evaluations). GCJ-02 takes one Newton step instead (two evaluations of the offset and one
// of its Jacobian, see `gcj02_newton`), and iterates only next to the 105th meridian, where
// the offset's √|lon − 105| term has no bounded second derivative.

/// Step size at which the GCJ-02 iteration next to the 105th meridian stops, degrees.
const GCJ02_INVERSE_EPSILON: f64 = 1e-10;
/// Distance from the 105th meridian, degrees, within which the GCJ-02 inverse iterates
/// rather than trust its Newton step, whose error from the √|lon − 105| term grows as
/// |lon − 105|^-1.5 towards the meridian (it is about 2e-13° at this distance).
const KINK_GUARD: f64 = 0.01;
/// Step size at which [`bd09_to_gcj02`] stops, degrees.
const BD09_INVERSE_EPSILON: f64 = 1e-8;
const INVERSE_MAX_STEPS: usize = 30;

/// Whether a point lies outside the rough bounding box in which GCJ-02 applies. The box is
/// a rectangle, so points in neighbouring countries (Seoul, Hanoi) are "inside" it.
pub fn out_of_china(lon: f64, lat: f64) -> bool {
    !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat)
}

/// sin 35° and cos 35°: the GCJ-02 series is centred on latitude 35°.
const SIN_35: f64 = 0.573_576_436_351_046;
const COS_35: f64 = 0.819_152_044_288_991_8;

// The GCJ-02 series takes fourteen sines of multiples of the coordinates. They are computed
// here from two `sin_cos` calls by multiple-angle identities, which makes the transforms
// about three times faster. Each identity multiplies the rounding error by at most its
// multiple, so the sines are good to about 1e-12, which moves a result by less than 1e-16°
// (see `multiple_angle_series_matches_the_published_one`).

/// π/2 in two parts for an exact argument reduction (fdlibm's `pio2_1`, `pio2_1t`).
const PIO2_HI: f64 = 1.570_796_326_734_125_6;
const PIO2_LO: f64 = 6.077_100_506_506_192e-11;

/// `a.sin_cos()` for the moderate angles of the series (|a| < 3 here), about three times as
/// fast as the library's: reduction to [−π/4, π/4] by multiples of π/2, then Taylor series
/// to r^15 / r^16, whose remainders (< 5e-17) are below the rounding of the result. Large
/// or non-finite angles go to the library.
#[inline]
fn sin_cos(a: f64) -> (f64, f64) {
    // NaN fails the comparison too.
    if !a.is_finite() || a.abs() >= 1e5 {
        return a.sin_cos();
    }
    let q = a * std::f64::consts::FRAC_2_PI;
    // Rounded to the nearest integer by truncation (`round` is a library call on x86-64).
    let k = (q + if q >= 0.0 { 0.5 } else { -0.5 }) as i64 as f64;
    let r = (a - k * PIO2_HI) - k * PIO2_LO;
    let r2 = r * r;
    let sin = r
        * (1.0
            + r2 * (-1.0 / 6.0
                + r2 * (1.0 / 120.0
                    + r2 * (-1.0 / 5_040.0
                        + r2 * (1.0 / 362_880.0
                            + r2 * (-1.0 / 39_916_800.0
                                + r2 * (1.0 / 6_227_020_800.0
                                    + r2 * (-1.0 / 1_307_674_368_000.0))))))));
    let cos = 1.0
        + r2 * (-1.0 / 2.0
            + r2 * (1.0 / 24.0
                + r2 * (-1.0 / 720.0
                    + r2 * (1.0 / 40_320.0
                        + r2 * (-1.0 / 3_628_800.0
                            + r2 * (1.0 / 479_001_600.0
                                + r2 * (-1.0 / 87_178_291_200.0
                                    + r2 * (1.0 / 20_922_789_888_000.0))))))));
    // The quadrant: k mod 4, for negative k too.
    match (k as i64) & 3 {
        0 => (sin, cos),
        1 => (cos, -sin),
        2 => (-sin, -cos),
        _ => (-cos, sin),
    }
}

/// sin(vπ/30), sin(vπ/12), sin(vπ/3), sin(vπ), sin(2vπ), sin(6vπ) from `sin_cos(vπ/60)`,
/// and the cosines of the same angles (which only the inverse's Jacobian uses; where they
/// are not used the compiler drops them).
#[inline(always)]
fn x_harmonics(s1: f64, c1: f64) -> ([f64; 6], [f64; 6]) {
    let (s2, c2) = (2.0 * s1 * c1, 1.0 - 2.0 * s1 * s1);
    let (s4, c4) = (2.0 * s2 * c2, 1.0 - 2.0 * s2 * s2);
    let (s5, c5) = (s4 * c1 + c4 * s1, c4 * c1 - s4 * s1);
    let (s10, c10) = (2.0 * s5 * c5, 1.0 - 2.0 * s5 * s5);
    let (s20, c20) = (2.0 * s10 * c10, 1.0 - 2.0 * s10 * s10);
    let s60 = s20 * (3.0 - 4.0 * s20 * s20);
    let c60 = c20 * (4.0 * c20 * c20 - 3.0);
    let s120 = 2.0 * s60 * c60;
    let c120 = 1.0 - 2.0 * s60 * s60;
    let s360 = s120 * (3.0 - 4.0 * s120 * s120);
    let c360 = c120 * (4.0 * c120 * c120 - 3.0);
    (
        [s2, s5, s20, s60, s120, s360],
        [c2, c5, c20, c60, c120, c360],
    )
}

/// sin(vπ/30), sin(vπ/12), sin(vπ/3), sin(vπ) from `sin_cos(vπ/180)`, and their cosines.
#[inline(always)]
fn y_harmonics(s1: f64, c1: f64) -> ([f64; 4], [f64; 4]) {
    let s3 = s1 * (3.0 - 4.0 * s1 * s1);
    let c3 = c1 * (4.0 * c1 * c1 - 3.0);
    let (s6, c6) = (2.0 * s3 * c3, 1.0 - 2.0 * s3 * s3);
    let (s12, c12) = (2.0 * s6 * c6, 1.0 - 2.0 * s6 * s6);
    let (s15, c15) = (s12 * c3 + c12 * s3, c12 * c3 - s12 * s3);
    let (s30, c30) = (2.0 * s15 * c15, 1.0 - 2.0 * s15 * s15);
    let (s60, c60) = (2.0 * s30 * c30, 1.0 - 2.0 * s30 * s30);
    let s180 = s60 * (3.0 - 4.0 * s60 * s60);
    let c180 = c60 * (4.0 * c60 * c60 - 3.0);
    ([s6, s15, s60, s180], [c6, c15, c60, c180])
}

/// The raw GCJ-02 series `(lon, lat)` at `x` = lon − 105, `y` = lat − 35, given
/// the sines of [`x_harmonics`] and [`y_harmonics`].
#[inline]
fn series(x: f64, y: f64, xs: [f64; 6], ys: [f64; 4]) -> (f64, f64) {
    let [x30, x12, x3, x1, x2x, x6x] = xs;
    let [y30, y12, y3, y1] = ys;
    let sqrt_abs_x = x.abs().sqrt();
    // The published series multiplies every pair of sines by 2/3; folded into the
    // coefficients (a multiplication instead of a division) it rounds differently by 1e-16.
    const TWO_THIRDS: f64 = 2.0 / 3.0;
    // The term both series share: sin(6xπ) and sin(2xπ).
    let shared = (20.0 * TWO_THIRDS) * (x6x + x2x);
    let mut lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x;
    lat += shared;
    lat += (20.0 * TWO_THIRDS) * y1 + (40.0 * TWO_THIRDS) * y3;
    lat += (160.0 * TWO_THIRDS) * y12 + (320.0 * TWO_THIRDS) * y30;
    let mut lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x;
    lon += shared;
    lon += (20.0 * TWO_THIRDS) * x1 + (40.0 * TWO_THIRDS) * x3;
    lon += (150.0 * TWO_THIRDS) * x12 + (300.0 * TWO_THIRDS) * x30;
    (lon, lat)
}

/// The partial derivatives of [`series`]: `[[∂lon/∂x, ∂lon/∂y], [∂lat/∂x, ∂lat/∂y]]`, given
/// the sines' cosines from [`x_harmonics`] and [`y_harmonics`]. Infinite at x = 0, where
/// √|x| has no derivative.
#[inline(always)]
fn series_derivatives(x: f64, y: f64, xc: [f64; 6], yc: [f64; 4]) -> [[f64; 2]; 2] {
    let [x30, x12, x3, x1, x2x, x6x] = xc;
    let [y30, y12, y3, y1] = yc;
    const TWO_THIRDS: f64 = 2.0 / 3.0;
    // d/dv sin(kv) = k cos(kv), for each coefficient and multiple of `series`.
    let shared = (20.0 * TWO_THIRDS) * (6.0 * PI * x6x + 2.0 * PI * x2x);
    let half_inv_sqrt = 0.5 / x.abs().sqrt() * x.signum();
    let lon_x = 1.0
        + 0.2 * x
        + 0.1 * y
        + 0.1 * half_inv_sqrt
        + shared
        + (20.0 * TWO_THIRDS * PI) * x1
        + (40.0 * TWO_THIRDS * PI / 3.0) * x3
        + (150.0 * TWO_THIRDS * PI / 12.0) * x12
        + (300.0 * TWO_THIRDS * PI / 30.0) * x30;
    let lon_y = 2.0 + 0.1 * x;
    let lat_x = 2.0 + 0.1 * y + 0.2 * half_inv_sqrt + shared;
    let lat_y = 3.0
        + 0.4 * y
        + 0.1 * x
        + (20.0 * TWO_THIRDS * PI) * y1
        + (40.0 * TWO_THIRDS * PI / 3.0) * y3
        + (160.0 * TWO_THIRDS * PI / 12.0) * y12
        + (320.0 * TWO_THIRDS * PI / 30.0) * y30;
    [[lon_x, lon_y], [lat_x, lat_y]]
}

/// Metres of the series to degrees along the meridian, before the latitude's factor.
const LAT_SCALE: f64 = 180.0 / (KRASOVSKY_A * (1.0 - KRASOVSKY_EE) * PI);
/// Metres of the series to degrees along the parallel, before the latitude's factor.
const LON_SCALE: f64 = 180.0 / (KRASOVSKY_A * PI);

/// The GCJ-02 offset `(dlon, dlat)` at a WGS-84 point, and its Jacobian
/// `[[∂dlon/∂lon, ∂dlon/∂lat], [∂dlat/∂lon, ∂dlat/∂lat]]`. Callers that ignore the Jacobian
/// do not pay for it: inlined, it is dead code.
// Always inlined: the inverses rely on copies for different points being interleaved.
#[inline(always)]
fn gcj02_delta_jacobian(lon: f64, lat: f64) -> ((f64, f64), [[f64; 2]; 2]) {
    let (x, y) = (lon - 105.0, lat - 35.0);
    let (sx, cx) = sin_cos(x * (PI / 60.0));
    let (sy, cy) = sin_cos(y * (PI / 180.0));
    let (xs, xc) = x_harmonics(sx, cx);
    let (ys, yc) = y_harmonics(sy, cy);
    let (s_lon, s_lat) = series(x, y, xs, ys);
    // lat = y + 35°.
    let sin_lat = sy * COS_35 + cy * SIN_35;
    let cos_lat = cy * COS_35 - sy * SIN_35;
    let magic = 1.0 - KRASOVSKY_EE * sin_lat * sin_lat;
    let sqrt_magic = magic.sqrt();
    let dlat = s_lat * (magic * sqrt_magic) * LAT_SCALE;
    let dlon = s_lon * sqrt_magic / cos_lat * LON_SCALE;

    // The factors' derivatives per degree of latitude, from d(ln magic)/dφ =
    // −2e² sin φ cos φ / magic: d ln(√magic / cos φ) = tan φ + ½ d ln magic and
    // d ln(magic^1.5) = 1.5 d ln magic.
    let [[lon_x, lon_y], [lat_x, lat_y]] = series_derivatives(x, y, xc, yc);
    let lon_factor = sqrt_magic / cos_lat * LON_SCALE;
    let lat_factor = magic * sqrt_magic * LAT_SCALE;
    let d_ln_magic = -2.0 * KRASOVSKY_EE * sin_lat * cos_lat / magic;
    const PER_DEGREE: f64 = PI / 180.0;
    let d_ln_lon_factor = (sin_lat / cos_lat + 0.5 * d_ln_magic) * PER_DEGREE;
    let d_ln_lat_factor = 1.5 * d_ln_magic * PER_DEGREE;
    let jacobian = [
        [
            lon_factor * lon_x,
            lon_factor * (lon_y + s_lon * d_ln_lon_factor),
        ],
        [
            lat_factor * lat_x,
            lat_factor * (lat_y + s_lat * d_ln_lat_factor),
        ],
    ];
    ((dlon, dlat), jacobian)
}

/// The GCJ-02 offset `(dlon, dlat)` at a WGS-84 point.
#[inline(always)]
fn gcj02_delta(lon: f64, lat: f64) -> (f64, f64) {
    gcj02_delta_jacobian(lon, lat).0
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

/// Solves `forward(p) = target` by fixed-point iteration from `start` (for BD-09).
#[inline]
fn invert(
    target: (f64, f64),
    start: (f64, f64),
    forward: fn(f64, f64) -> (f64, f64),
    epsilon: f64,
) -> (f64, f64) {
    let (mut lon, mut lat) = start;
    for _ in 0..INVERSE_MAX_STEPS {
        let (f_lon, f_lat) = forward(lon, lat);
        let (d_lon, d_lat) = (target.0 - f_lon, target.1 - f_lat);
        lon += d_lon;
        lat += d_lat;
        if d_lon.abs() < epsilon && d_lat.abs() < epsilon {
            break;
        }
    }
    (lon, lat)
}

/// The one-step estimate of the GCJ-02 inverse, target − offset(target): the start of
/// [`gcj02_newton`]'s step, off by up to about 2 m (2e-5°).
#[inline(always)]
fn gcj02_estimate(target: (f64, f64)) -> (f64, f64) {
    let (dlon, dlat) = gcj02_delta(target.0, target.1);
    (target.0 - dlon, target.1 - dlat)
}

/// The Newton step of the GCJ-02 inverse for the GCJ-02 point `target` from the estimate
/// `p1` ([`gcj02_estimate`]): the WGS-84 point, and whether it is final (false within
/// [`KINK_GUARD`] of the 105th meridian).
///
/// The WGS-84 point p solves F(p) = p + offset(p) − target = 0. From p₁, one Newton step
/// p₂ = p₁ − (I + J(p₁))⁻¹ F(p₁) leaves an error of about half the offset's second
/// derivative (< 0.1 per degree) times the square of p₁'s error: below 1e-10°. Both steps
/// are branch-free, so that those of neighbouring points overlap in the processor.
#[inline(always)]
fn gcj02_newton(target: (f64, f64), p1: (f64, f64)) -> ((f64, f64), bool) {
    let ((d1_lon, d1_lat), [[j00, j01], [j10, j11]]) = gcj02_delta_jacobian(p1.0, p1.1);
    // F(p₁), with p₁ − target exact (the two are within a factor of two of each other).
    let (r_lon, r_lat) = ((p1.0 - target.0) + d1_lon, (p1.1 - target.1) + d1_lat);
    let (a, b, c, d) = (1.0 + j00, j01, j10, 1.0 + j11);
    let inv_det = 1.0 / (a * d - b * c);
    let p2 = (
        p1.0 - (d * r_lon - b * r_lat) * inv_det,
        p1.1 - (a * r_lat - c * r_lon) * inv_det,
    );
    (p2, (p1.0 - 105.0).abs() >= KINK_GUARD)
}

/// Fixed-point iteration p ← target − offset(p) from `p` until a step is below
/// [`GCJ02_INVERSE_EPSILON`]: the inverse where the Newton step is not final.
#[cold]
fn gcj02_iterate(target: (f64, f64), mut p: (f64, f64)) -> (f64, f64) {
    for _ in 0..INVERSE_MAX_STEPS {
        let (dlon, dlat) = gcj02_delta(p.0, p.1);
        let next = (target.0 - dlon, target.1 - dlat);
        let settled = (next.0 - p.0).abs() < GCJ02_INVERSE_EPSILON
            && (next.1 - p.1).abs() < GCJ02_INVERSE_EPSILON;
        p = next;
        if settled {
            break;
        }
    }
    p
}

/// GCJ-02 → WGS-84 to within about 1e-10°: one Newton step from the one-step estimate
/// (see [`gcj02_newton`]). Points outside China's bounding box are returned unchanged.
pub fn gcj02_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lon, lat) {
        return (lon, lat);
    }
    let target = (lon, lat);
    match gcj02_newton(target, gcj02_estimate(target)) {
        (p, true) => p,
        (p, false) => gcj02_iterate(target, p),
    }
}

/// [`gcj02_to_wgs84`] of two points at once, with results identical to two calls. One
/// point's computation is a chain of dependent steps, each too long for the processor to
/// look past; here each step is written for both points side by side, without a branch
/// between them, so that the processor overlaps the two.
pub fn gcj02_to_wgs84_pair(a: (f64, f64), b: (f64, f64)) -> ((f64, f64), (f64, f64)) {
    // Points outside the box go through the arithmetic too (harmlessly, even NaN) and are
    // then returned as they are.
    let (ea, eb) = (gcj02_estimate(a), gcj02_estimate(b));
    let (na, nb) = (gcj02_newton(a, ea), gcj02_newton(b, eb));
    let finish = |target: (f64, f64), (p, is_final): ((f64, f64), bool)| {
        if out_of_china(target.0, target.1) {
            target
        } else if is_final {
            p
        } else {
            gcj02_iterate(target, p)
        }
    };
    (finish(a, na), finish(b, nb))
}

/// Rotates `(x, y)` by the small angle `eps` (|eps| ≤ 3e-6 rad) and scales it to length
/// `z`: `z·(cos(θ + eps), sin(θ + eps))` with θ = atan2(y, x), without atan2 or a sine of θ.
/// cos eps = 1 − eps²/2 and sin eps = eps − eps³/6 are exact to 1e-30 at this size.
#[inline]
fn turn(x: f64, y: f64, z: f64, eps: f64) -> (f64, f64) {
    let r = (x * x + y * y).sqrt();
    let (cos_t, sin_t) = if r > 0.0 { (x / r, y / r) } else { (1.0, 0.0) };
    let (cos_e, sin_e) = (1.0 - eps * eps / 2.0, eps - eps * eps * eps / 6.0);
    (
        z * (cos_t * cos_e - sin_t * sin_e),
        z * (sin_t * cos_e + cos_t * sin_e),
    )
}

/// GCJ-02 → BD-09.
pub fn gcj02_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let z = (lon * lon + lat * lat).sqrt() + 0.000_02 * (lat * BD_X_PI).sin();
    let (x, y) = turn(lon, lat, z, 0.000_003 * (lon * BD_X_PI).cos());
    (x + 0.0065, y + 0.006)
}

/// Baidu's published one-step BD-09 → GCJ-02: error up to about 0.1 m. Prefer
/// [`bd09_to_gcj02`].
pub fn bd09_to_gcj02_approx(lon: f64, lat: f64) -> (f64, f64) {
    let (x, y) = (lon - 0.0065, lat - 0.006);
    let z = (x * x + y * y).sqrt() - 0.000_02 * (y * BD_X_PI).sin();
    turn(x, y, z, -0.000_003 * (x * BD_X_PI).cos())
}

/// BD-09 → GCJ-02, iterating the forward transform to within about 1e-10°.
pub fn bd09_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    invert(
        (lon, lat),
        bd09_to_gcj02_approx(lon, lat),
        gcj02_to_bd09,
        BD09_INVERSE_EPSILON,
    )
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

    /// The GCJ-02 series as published, one sine per term.
    fn reference_transform(x: f64, y: f64) -> (f64, f64) {
        let mut lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
        lat += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
        lat += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
        lat += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
        let mut lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
        lon += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
        lon += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
        lon += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
        (lon, lat)
    }

    fn transform(x: f64, y: f64) -> (f64, f64) {
        let (sx, cx) = sin_cos(x * (PI / 60.0));
        let (sy, cy) = sin_cos(y * (PI / 180.0));
        series(x, y, x_harmonics(sx, cx).0, y_harmonics(sy, cy).0)
    }

    /// Baidu's transforms as published, with atan2.
    fn reference_bd09(lon: f64, lat: f64) -> (f64, f64) {
        let z = (lon * lon + lat * lat).sqrt() + 0.000_02 * (lat * BD_X_PI).sin();
        let theta = lat.atan2(lon) + 0.000_003 * (lon * BD_X_PI).cos();
        (z * theta.cos() + 0.0065, z * theta.sin() + 0.006)
    }

    #[test]
    fn bd09_without_atan2_matches_the_published_formula() {
        for i in 0..=300 {
            for j in 0..=300 {
                let (lon, lat) = (70.0 + f64::from(i) * 0.2237, f64::from(j) * 0.1913);
                let (a, b) = (gcj02_to_bd09(lon, lat), reference_bd09(lon, lat));
                assert!(
                    (a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12,
                    "{a:?} {b:?}"
                );
            }
        }
        assert_eq!(gcj02_to_bd09(0.0, 0.0), reference_bd09(0.0, 0.0));
    }

    #[test]
    fn fast_sin_cos_matches_the_library() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let a = f64::from(i) * 1.7e-5;
            let ((s, c), (ls, lc)) = (sin_cos(a), a.sin_cos());
            worst = worst.max((s - ls).abs()).max((c - lc).abs());
        }
        assert!(worst < 5e-16, "{worst}");
        for a in [1e6, -1e7, f64::NAN, f64::INFINITY] {
            let (s, c) = sin_cos(a);
            let (ls, lc) = a.sin_cos();
            assert!(
                s.to_bits() == ls.to_bits() && c.to_bits() == lc.to_bits(),
                "{a}"
            );
        }
    }

    #[test]
    fn multiple_angle_series_matches_the_published_one() {
        // The whole box and beyond, in steps that are not multiples of the periods.
        let mut worst = 0.0f64;
        for i in 0..=700 {
            for j in 0..=600 {
                let (x, y) = (-40.0 + f64::from(i) * 0.1127, -40.0 + f64::from(j) * 0.1131);
                let (lon, lat) = transform(x, y);
                let (r_lon, r_lat) = reference_transform(x, y);
                worst = worst.max((lon - r_lon).abs()).max((lat - r_lat).abs());
            }
        }
        // The series is in units of about 1e-5° per unit: 1e-9 here is 1e-14°.
        assert!(worst < 1e-9, "{worst}");
    }

    #[test]
    fn paired_inverse_is_two_single_ones() {
        let points = [
            (121.47822305927693, 31.22845773757727),
            (139.6917, 35.6895),
            (121.0, 31.0),
            (72.0041, 0.83),
            (f64::NAN, 31.0),
            (105.0, 35.0),
            (105.004, 30.0),
            (104.9999999, 40.0),
            (f64::INFINITY, 31.0),
        ];
        for &a in &points {
            for &b in &points {
                let (pa, pb) = gcj02_to_wgs84_pair(a, b);
                let (sa, sb) = (gcj02_to_wgs84(a.0, a.1), gcj02_to_wgs84(b.0, b.1));
                for (got, want) in [(pa, sa), (pb, sb)] {
                    assert!(
                        got.0.to_bits() == want.0.to_bits() && got.1.to_bits() == want.1.to_bits(),
                        "{a:?} {b:?}: {got:?} vs {want:?}"
                    );
                }
            }
        }
    }

    /// The largest coordinate error of the GCJ-02 inverse over the WGS-84 points `points`.
    fn worst_round_trip(points: impl Iterator<Item = (f64, f64)>) -> f64 {
        points
            .map(|(lon, lat)| {
                let (g_lon, g_lat) = wgs84_to_gcj02(lon, lat);
                let (w_lon, w_lat) = gcj02_to_wgs84(g_lon, g_lat);
                (w_lon - lon).abs().max((w_lat - lat).abs())
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn inverse_is_within_2e_10_degrees_over_the_whole_box() {
        // Steps that are not multiples of the series' periods.
        let grid = (0..=600).flat_map(|i| {
            (0..=500).map(move |j| (72.1 + f64::from(i) * 0.1093, 0.9 + f64::from(j) * 0.1097))
        });
        let worst = worst_round_trip(grid);
        // 7.1e-11 when written.
        assert!(worst < 2e-10, "{worst}");
    }

    #[test]
    fn inverse_is_within_1e_10_degrees_next_to_the_105th_meridian() {
        // Where √|lon − 105| makes the Newton step unreliable and the inverse iterates, and
        // just outside that band, where the step is final.
        let offsets = (-12..=-1).flat_map(|e| [10f64.powi(e), -(10f64.powi(e))]);
        let offsets: Vec<f64> = offsets
            .chain([0.0, -0.0, 0.0099, 0.0101, -0.0101, 0.02, -0.05])
            .collect();
        let points = offsets
            .iter()
            .flat_map(|&dx| (0..=55).map(move |j| (105.0 + dx, 0.9 + f64::from(j) * 0.99)));
        let worst = worst_round_trip(points);
        assert!(worst < 1e-10, "{worst}");
        // GCJ-02 points whose one-step estimate lands on either side of the band's edges.
        let targets = (0..=2000).map(|i| 104.98 + f64::from(i) * 0.00002);
        for lon in targets {
            let (w_lon, w_lat) = gcj02_to_wgs84(lon, 30.0);
            let (g_lon, g_lat) = wgs84_to_gcj02(w_lon, w_lat);
            assert!(
                (g_lon - lon).abs() < 1e-10 && (g_lat - 30.0).abs() < 1e-10,
                "{lon}: {g_lon}, {g_lat}"
            );
        }
    }

    #[test]
    fn offset_jacobian_matches_finite_differences() {
        let h = 1e-6;
        for i in 0..=40 {
            for j in 0..=40 {
                let (lon, lat) = (72.3 + f64::from(i) * 1.631, 1.1 + f64::from(j) * 1.359);
                let (_, jac) = gcj02_delta_jacobian(lon, lat);
                let d = |lon, lat| gcj02_delta(lon, lat);
                let (east, west) = (d(lon + h, lat), d(lon - h, lat));
                let (north, south) = (d(lon, lat + h), d(lon, lat - h));
                let numeric = [
                    [
                        (east.0 - west.0) / (2.0 * h),
                        (north.0 - south.0) / (2.0 * h),
                    ],
                    [
                        (east.1 - west.1) / (2.0 * h),
                        (north.1 - south.1) / (2.0 * h),
                    ],
                ];
                for r in 0..2 {
                    for c in 0..2 {
                        // The offset is about 1e-2°, so the differences are good to about
                        // 1e-11; the Newton step needs the Jacobian to about 1e-7.
                        assert!(
                            (jac[r][c] - numeric[r][c]).abs() < 1e-9,
                            "({lon}, {lat}) [{r}][{c}]: {} vs {}",
                            jac[r][c],
                            numeric[r][c]
                        );
                    }
                }
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
