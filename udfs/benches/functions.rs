//! Throughput of every Bund function over one million values, one core.
//!
//! `cargo bench -p bund-udfs` (add a function name to run one, e.g.
//! `cargo bench -p bund-udfs -- mask_token`). Each iteration calls the function the way
//! DataFusion's executor does: on batches of 8192 rows, Utf8 strings unless stated, on
//! realistic values (most of them valid) generated from a fixed seed. Criterion prints the
//! figure as `thrpt:` in elements (values) per second.
//!
//! Targets (issue 3): string masks and validators ≥ 20 M values/s, `mask_token` ≥ 2 M/s,
//! coordinate transforms ≥ 5 M/s.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bund_udfs::SecretStore;
use bund_udfs::domain::{days_from_civil, district, id_card, uscc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::Field;
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF};

const VALUES: usize = 1_000_000;
const BATCH: usize = 8192;

/// A small deterministic generator (xorshift64*), so every run sees the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn districts() -> Vec<&'static str> {
    district::CURRENT
        .iter()
        .chain(district::HISTORICAL)
        .map(|d| d.code)
        .collect()
}

/// 18-character ID numbers, one in ten with a wrong check character.
fn id_numbers(rng: &mut Rng) -> Vec<String> {
    let codes = districts();
    (0..VALUES)
        .map(|i| {
            let days = days_from_civil(1940, 1, 1) + rng.below(80 * 365) as i32;
            let (y, m, d) = bund_udfs::domain::civil_from_days(days);
            let first17 = format!(
                "{}{y:04}{m:02}{d:02}{:03}",
                rng.pick(&codes),
                rng.below(1000)
            );
            let check = id_card::check_char(first17.as_bytes()).unwrap_or(b'0');
            let check = if i % 10 == 0 {
                b'0' + (check % 10)
            } else {
                check
            };
            format!("{first17}{}", char::from(check))
        })
        .collect()
}

/// Old 15-digit numbers.
fn id_numbers_15(rng: &mut Rng) -> Vec<String> {
    let codes = districts();
    (0..VALUES)
        .map(|_| {
            let days = days_from_civil(1940, 1, 1) + rng.below(59 * 365) as i32;
            let (y, m, d) = bund_udfs::domain::civil_from_days(days);
            format!(
                "{}{:02}{m:02}{d:02}{:03}",
                rng.pick(&codes),
                y % 100,
                rng.below(1000)
            )
        })
        .collect()
}

/// Unified social credit codes of Shanghai enterprises, individual businesses and
/// cooperatives, one in ten with a wrong check character.
fn credit_codes(rng: &mut Rng) -> Vec<String> {
    let codes = districts();
    (0..VALUES)
        .map(|i| {
            let mut first17 = format!("9{}{}", 1 + rng.below(3), rng.pick(&codes)).into_bytes();
            for _ in 0..9 {
                first17.push(uscc::ALPHABET[rng.below(uscc::ALPHABET.len())]);
            }
            let check = uscc::check_char(&first17).unwrap_or(b'0');
            first17.push(if i % 10 == 0 { b'0' } else { check });
            String::from_utf8(first17).unwrap_or_default()
        })
        .collect()
}

fn phones(rng: &mut Rng) -> Vec<String> {
    let prefixes = ["138", "139", "150", "186", "199", "154", "+86137", "+86189"];
    (0..VALUES)
        .map(|_| format!("{}{:08}", rng.pick(&prefixes), rng.below(100_000_000)))
        .collect()
}

fn emails(rng: &mut Rng) -> Vec<String> {
    let users = ["zhangwei", "li.na", "wang_fang88", "x", "chen.jing.sh"];
    let domains = ["example.cn", "163.com", "qq.com", "sh.gov.cn"];
    (0..VALUES)
        .map(|i| format!("{}{i}@{}", rng.pick(&users), rng.pick(&domains)))
        .collect()
}

fn names(rng: &mut Rng) -> Vec<String> {
    let surnames = [
        "张", "王", "李", "刘", "陈", "欧阳", "司马", "黄", "周", "徐",
    ];
    let given = [
        "伟", "芳", "娜", "敏", "静", "浩然", "欣怡", "建国", "梓涵", "磊",
    ];
    (0..VALUES)
        .map(|_| format!("{}{}", rng.pick(&surnames), rng.pick(&given)))
        .collect()
}

fn addresses(rng: &mut Rng) -> Vec<String> {
    let towns = ["", "张江镇", "漕河泾街道", "城桥镇", ""];
    let roads = [
        "南京东路",
        "淮海中路",
        "世纪大道",
        "祖冲之路",
        "镇宁路",
        "八一路",
    ];
    (0..VALUES)
        .map(|_| {
            let d = rng.pick(district::CURRENT);
            format!(
                "上海市{}{}{}{}号{}室",
                d.name_zh,
                rng.pick(&towns),
                rng.pick(&roads),
                1 + rng.below(2000),
                101 + rng.below(2000)
            )
        })
        .collect()
}

/// Points over Shanghai (and its BD-09 / GCJ-02 neighbourhood: the offsets are < 0.01°).
fn lons_lats(rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
    (0..VALUES)
        .map(|_| (120.85 + rng.unit() * 1.1, 30.67 + rng.unit() * 1.2))
        .unzip()
}

/// One argument, cut into executor-sized batches.
enum Arg {
    Column(Vec<ArrayRef>),
    Scalar(ScalarValue),
}

fn strings(values: &[String]) -> Arg {
    Arg::Column(
        values
            .chunks(BATCH)
            .map(|c| Arc::new(StringArray::from_iter_values(c)) as ArrayRef)
            .collect(),
    )
}

fn floats(values: &[f64]) -> Arg {
    Arg::Column(
        values
            .chunks(BATCH)
            .map(|c| Arc::new(Float64Array::from(c.to_vec())) as ArrayRef)
            .collect(),
    )
}

fn scalar(value: impl Into<ScalarValue>) -> Arg {
    Arg::Scalar(value.into())
}

/// Calls `udf` on every batch of `args` once.
struct Call {
    udf: Arc<ScalarUDF>,
    batches: Vec<ScalarFunctionArgs>,
}

impl Call {
    fn new(udf: Arc<ScalarUDF>, args: Vec<Arg>) -> Self {
        let batch_count = args
            .iter()
            .find_map(|a| match a {
                Arg::Column(c) => Some(c.len()),
                Arg::Scalar(_) => None,
            })
            .unwrap_or(1);
        let config = Arc::new(ConfigOptions::default());
        let batches = (0..batch_count)
            .map(|b| {
                let values: Vec<ColumnarValue> = args
                    .iter()
                    .map(|a| match a {
                        Arg::Column(c) => ColumnarValue::Array(Arc::clone(&c[b])),
                        Arg::Scalar(s) => ColumnarValue::Scalar(s.clone()),
                    })
                    .collect();
                let arg_fields: Vec<_> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Arc::new(Field::new(format!("a{i}"), v.data_type(), true)))
                    .collect();
                let scalars: Vec<_> = values
                    .iter()
                    .map(|v| match v {
                        ColumnarValue::Scalar(s) => Some(s),
                        ColumnarValue::Array(_) => None,
                    })
                    .collect();
                let return_field = udf
                    .return_field_from_args(ReturnFieldArgs {
                        arg_fields: &arg_fields,
                        scalar_arguments: &scalars,
                    })
                    .expect("the benchmark's arguments fit the signature");
                let number_rows = values
                    .iter()
                    .find_map(|v| match v {
                        ColumnarValue::Array(a) => Some(a.len()),
                        ColumnarValue::Scalar(_) => None,
                    })
                    .unwrap_or(1);
                ScalarFunctionArgs {
                    args: values,
                    arg_fields,
                    number_rows,
                    return_field,
                    config_options: Arc::clone(&config),
                }
            })
            .collect();
        Self { udf, batches }
    }

    fn run(&self) {
        for batch in &self.batches {
            let out = self
                .udf
                .invoke_with_args(batch.clone())
                .expect("the function runs");
            black_box(out);
        }
    }
}

fn functions(c: &mut Criterion) {
    let mut secrets = SecretStore::new();
    secrets.insert("bench", b"a 32-byte key for the benchmarks".to_vec());
    let udfs = bund_udfs::all(&Arc::new(secrets));
    let udf = |name: &str| {
        Arc::clone(
            udfs.iter()
                .find(|f| f.name() == name)
                .unwrap_or_else(|| panic!("{name} is not a Bund function")),
        )
    };

    let mut rng = Rng(0x5eed_b0d1_2025_0630);
    let ids = id_numbers(&mut rng);
    let ids15 = id_numbers_15(&mut rng);
    let codes = credit_codes(&mut rng);
    let phones = phones(&mut rng);
    let emails = emails(&mut rng);
    let names = names(&mut rng);
    let addresses = addresses(&mut rng);
    let (lons, lats) = lons_lats(&mut rng);
    let (lons2, lats2) = lons_lats(&mut rng);
    let division_codes: Vec<String> = (0..VALUES)
        .map(|_| rng.pick(&districts()).to_string())
        .collect();
    let dates: Vec<i32> = (0..VALUES)
        .map(|_| days_from_civil(1940, 1, 1) + rng.below(100 * 365) as i32)
        .collect();
    let incomes: Vec<i64> = (0..VALUES)
        .map(|_| rng.below(2_000_000) as i64 - 100_000)
        .collect();
    let date_arg = || {
        Arg::Column(
            dates
                .chunks(BATCH)
                .map(|c| Arc::new(Date32Array::from(c.to_vec())) as ArrayRef)
                .collect(),
        )
    };
    let int_arg = || {
        Arg::Column(
            incomes
                .chunks(BATCH)
                .map(|c| Arc::new(Int64Array::from(c.to_vec())) as ArrayRef)
                .collect(),
        )
    };
    let at = ScalarValue::Date32(Some(days_from_civil(2025, 6, 30)));

    let calls: Vec<(&str, Vec<Arg>)> = vec![
        (
            "mask_keep",
            vec![strings(&phones), scalar(3i64), scalar(4i64)],
        ),
        ("mask_id_card", vec![strings(&ids)]),
        ("mask_phone", vec![strings(&phones)]),
        ("mask_email", vec![strings(&emails)]),
        ("mask_name_cn", vec![strings(&names), scalar("first_last")]),
        (
            "mask_address_cn",
            vec![strings(&addresses), scalar("street")],
        ),
        ("mask_date_year", vec![date_arg()]),
        ("mask_round", vec![int_arg(), scalar(1000i64)]),
        ("mask_null", vec![strings(&ids)]),
        ("mask_token", vec![strings(&ids), scalar("bench")]),
        ("id_card_valid", vec![strings(&ids)]),
        ("id_card_birth", vec![strings(&ids)]),
        ("id_card_sex", vec![strings(&ids)]),
        ("id_card_region", vec![strings(&ids)]),
        ("id_card_age", vec![strings(&ids), Arg::Scalar(at)]),
        ("id_card_upgrade", vec![strings(&ids15)]),
        ("uscc_valid", vec![strings(&codes)]),
        ("uscc_region", vec![strings(&codes)]),
        ("uscc_entity_type", vec![strings(&codes)]),
        ("district_name", vec![strings(&division_codes)]),
        ("phone_valid", vec![strings(&phones)]),
        ("wgs84_to_gcj02", vec![floats(&lons), floats(&lats)]),
        ("gcj02_to_wgs84", vec![floats(&lons), floats(&lats)]),
        ("gcj02_to_bd09", vec![floats(&lons), floats(&lats)]),
        ("bd09_to_gcj02", vec![floats(&lons), floats(&lats)]),
        (
            "geo_distance_m",
            vec![floats(&lons), floats(&lats), floats(&lons2), floats(&lats2)],
        ),
    ];
    assert_eq!(calls.len(), udfs.len(), "every function has a benchmark");

    let mut group = c.benchmark_group("udfs");
    group
        .throughput(Throughput::Elements(VALUES as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, args) in calls {
        let call = Call::new(udf(name), args);
        group.bench_function(name, |b| b.iter(|| call.run()));
    }
    group.finish();
}

criterion_group!(benches, functions);
criterion_main!(benches);
