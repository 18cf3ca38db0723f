//! `bund example-data`: the deterministic synthetic data set of the Shanghai example.
//!
//! A crate of its own so that it is compiled at full optimisation while the `bund` binary's
//! own crate (start-up, request handling) is not: see the release profile in Cargo.toml.
//!
//! Five bureaus' tables (police residents, market-regulation enterprises, HRSS pension
//! contributions as CSV, planning POIs, licences) whose keys join across bureaus: every
//! `id_card` is a valid GB 11643 number of an existing resident, every `uscc` a valid
//! GB 32100 code of an existing enterprise.
//!
//! Every row is a pure function of (table, row index, resident count): a splitmix64 stream
//! seeded by the table's salt and the index, plus keyed Feistel permutations where values
//! must be unique. So parts are generated independently (in parallel, in any order), memory
//! stays at one batch per worker, and the same `--rows` always gives byte-identical files.
//!
//! The data set is written under a temporary directory inside `out` and moved into place at
//! the end, `MANIFEST.json` last: a crash never leaves a data set that looks complete.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bund_udfs::domain::{civil_from_days, coords, days_from_civil, district, id_card, uscc};
use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Float64Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use datafusion::arrow::csv;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use serde::Serialize;

/// Bumped whenever the generated files change for the same `--rows`: their rows, or how they
/// are written (3: bloom filters on the lookup columns; 4: each row group of a table with
/// lookup columns sorted by the first, in data pages of at most `LOOKUP_PAGE_ROWS` rows,
/// bloom filters of half the size; 5: pages of 2,048 rows, residents' names without a
/// dictionary).
pub const GENERATOR_VERSION: u32 = 5;

/// The file, directly under `out`, that marks a complete data set; written last.
pub const MANIFEST: &str = "MANIFEST.json";

/// Largest supported resident count (household numbers have 8 digits at ~2.5 residents
/// each; the ID key space holds about 584 million numbers).
pub const MAX_RESIDENTS: u64 = 200_000_000;

/// The residents of the data set in `dir` and whether this version of the generator made
/// it; `None` when `dir` holds no complete data set.
pub fn existing(dir: &Path) -> Option<(u64, bool)> {
    let text = fs::read_to_string(dir.join(MANIFEST)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let residents = v.get("residents")?.as_u64()?;
    let version = v
        .get("generator_version")
        .and_then(serde_json::Value::as_u64);
    Some((residents, version == Some(u64::from(GENERATOR_VERSION))))
}

/// Options of `bund example-data`.
pub struct ExampleData {
    /// Number of residents; the other tables are sized from it.
    pub residents: u64,
    /// Output directory (created if missing).
    pub out: PathBuf,
}

/// Writes all tables; prints progress lines to stderr for long runs; returns per-table row
/// counts as (`bureau.table`, rows).
pub fn generate(opts: &ExampleData) -> Result<Vec<(String, u64)>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    generate_with(opts, &Layout::DEFAULT, threads)
}

/// Chunking of the output; only tests use other values.
#[derive(Debug, Clone, Copy)]
struct Layout {
    batch_rows: u64,
    part_rows: u64,
    row_group_rows: usize,
}

impl Layout {
    const DEFAULT: Layout = Layout {
        batch_rows: 256 * 1024,
        part_rows: 8 * 256 * 1024,
        row_group_rows: 128 * 1024,
    };
}

// ---------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Residents,
    Enterprises,
    Contributions,
    Poi,
    Licences,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Parquet,
    Csv,
    /// One SQLite database file per table (a bureau that keeps its data in a database).
    Sqlite,
}

impl Table {
    const ALL: [Table; 5] = [
        Table::Residents,
        Table::Enterprises,
        Table::Contributions,
        Table::Poi,
        Table::Licences,
    ];

    fn qualified_name(self) -> &'static str {
        match self {
            Table::Residents => "police.residents",
            Table::Enterprises => "market.enterprises",
            Table::Contributions => "hrss.contributions",
            Table::Poi => "planning.poi",
            Table::Licences => "licence.licences",
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Table::Residents => "police/residents",
            Table::Enterprises => "market/enterprises",
            Table::Contributions => "hrss/contributions",
            Table::Poi => "planning/poi",
            Table::Licences => "licence/licences",
        }
    }

    fn format(self) -> Format {
        match self {
            Table::Contributions => Format::Csv,
            Table::Licences => Format::Sqlite,
            _ => Format::Parquet,
        }
    }

    fn extension(self) -> &'static str {
        match self.format() {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::Sqlite => "sqlite",
        }
    }

    /// Files the table is written as: parts of `part_rows` rows, or one database file.
    fn parts(self, rows: u64, layout: &Layout) -> u64 {
        match self.format() {
            Format::Sqlite => 1,
            _ => rows.div_ceil(layout.part_rows),
        }
    }

    /// The file name of one part (the one database file of a SQLite table).
    fn file_name(self, part: u64) -> String {
        match self.format() {
            Format::Sqlite => format!("{}.sqlite", self.sql_name()),
            _ => format!("part-{part:05}.{}", self.extension()),
        }
    }

    /// The table's name inside its bureau.
    fn sql_name(self) -> &'static str {
        let q = self.qualified_name();
        q.split_once('.').map_or(q, |(_, t)| t)
    }

    fn rows(self, world: &World) -> u64 {
        match self {
            Table::Residents | Table::Contributions => world.residents,
            Table::Enterprises => world.enterprises,
            Table::Poi => world.poi,
            Table::Licences => world.licences,
        }
    }

    fn schema(self) -> SchemaRef {
        let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
        let fields = match self {
            Table::Residents => vec![
                utf8("id_card"),
                utf8("name"),
                utf8("sex"),
                Field::new("birth_date", DataType::Date32, false),
                Field::new("phone", DataType::Utf8, true),
                utf8("district_code"),
                utf8("address"),
                utf8("household_id"),
            ],
            Table::Enterprises => vec![
                utf8("uscc"),
                utf8("name"),
                utf8("legal_rep_id_card"),
                utf8("district_code"),
                Field::new("registered_capital", DataType::Decimal128(18, 2), false),
                Field::new("founded_on", DataType::Date32, false),
                utf8("status"),
            ],
            Table::Contributions => vec![
                utf8("id_card"),
                utf8("employer_uscc"),
                utf8("month"),
                Field::new("base", DataType::Decimal128(12, 2), false),
                Field::new("amount", DataType::Decimal128(12, 2), false),
            ],
            Table::Poi => vec![
                utf8("poi_id"),
                utf8("name"),
                utf8("category"),
                utf8("district_code"),
                Field::new("lon_wgs84", DataType::Float64, false),
                Field::new("lat_wgs84", DataType::Float64, false),
                Field::new("lon_gcj02", DataType::Float64, false),
                Field::new("lat_gcj02", DataType::Float64, false),
            ],
            Table::Licences => vec![
                utf8("licence_id"),
                utf8("licence_type"),
                utf8("holder_id"),
                Field::new("issued_on", DataType::Date32, false),
                Field::new("expires_on", DataType::Date32, true),
            ],
        };
        Arc::new(Schema::new(fields))
    }

    /// Parquet columns people look a row up by (ID numbers, phone numbers, credit codes):
    /// each row group gets a bloom filter of them, so that a lookup reads only the row
    /// groups that may hold the value.
    fn lookup_columns(self) -> &'static [&'static str] {
        match self {
            Table::Residents => &["id_card", "phone"],
            Table::Enterprises => &["uscc", "legal_rep_id_card"],
            Table::Contributions | Table::Poi | Table::Licences => &[],
        }
    }

    /// The lookup column each row group is sorted by, so that the page index narrows a
    /// lookup to one page of it inside the row group the bloom filter leaves. The rows of a
    /// row group stay the same (households together in the file); only their order changes.
    fn clustered_by(self) -> Option<&'static str> {
        self.lookup_columns().first().copied()
    }

    /// Parquet columns worth a dictionary (low cardinality). Not residents' names: their
    /// dictionary page (250 KB a row group) is decoded whole by every lookup that returns
    /// a name, where a page of plain names is 2,048 values (1 M residents, in-process, both
    /// with pages of 1,024 rows: DataFusion 3.5-3.7 -> 1.9-2.3 ms a lookup, DuckDB 3.0-4.3
    /// -> 2.0-2.4 ms; the file 5 % larger).
    fn dictionary_columns(self) -> &'static [&'static str] {
        match self {
            Table::Residents => &["sex", "district_code"],
            Table::Enterprises => &["district_code", "status"],
            Table::Contributions => &["month"],
            Table::Poi => &["category", "district_code"],
            Table::Licences => &["licence_type"],
        }
    }

    fn batch(self, world: &World, rows: std::ops::Range<u64>) -> Result<RecordBatch> {
        let columns = match self {
            Table::Residents => residents_batch(world, rows),
            Table::Enterprises => enterprises_batch(world, rows)?,
            Table::Contributions => contributions_batch(world, rows)?,
            Table::Poi => poi_batch(world, rows),
            Table::Licences => licences_batch(world, rows),
        };
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}

// ---------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 finaliser.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A splitmix64 stream seeded by (salt, index): one per row and purpose.
struct Rng(u64);

impl Rng {
    fn new(salt: u64, index: u64) -> Self {
        Rng(mix(mix(index.wrapping_add(GOLDEN_GAMMA)) ^ salt))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix(self.0)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-32 for our sizes).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Salts: one per table and purpose, so streams never overlap.
mod salt {
    pub(super) const RESIDENT_KEY: u64 = 0x5EED_0001_0000_0001;
    pub(super) const RESIDENT: u64 = 0x5EED_0001_0000_0002;
    pub(super) const HOUSEHOLD: u64 = 0x5EED_0001_0000_0003;
    pub(super) const HOUSEHOLD_BLOCK: u64 = 0x5EED_0001_0000_0004;
    pub(super) const ENTERPRISE_KEY: u64 = 0x5EED_0002_0000_0001;
    pub(super) const ENTERPRISE: u64 = 0x5EED_0002_0000_0002;
    pub(super) const ENTERPRISE_DETAIL: u64 = 0x5EED_0002_0000_0003;
    pub(super) const CONTRIBUTOR_PERM: u64 = 0x5EED_0003_0000_0001;
    pub(super) const CONTRIBUTOR: u64 = 0x5EED_0003_0000_0002;
    pub(super) const POI: u64 = 0x5EED_0004_0000_0001;
    pub(super) const POI_KEY: u64 = 0x5EED_0004_0000_0002;
    pub(super) const LICENCE: u64 = 0x5EED_0005_0000_0001;
    pub(super) const LICENCE_KEY: u64 = 0x5EED_0005_0000_0002;
}

/// A keyed pseudo-random permutation of `0..n`: a 4-round Feistel network on the smallest
/// even-width bit domain holding `n`, cycle-walked back into range.
struct Perm {
    n: u64,
    half_bits: u32,
    keys: [u64; 4],
}

impl Perm {
    fn new(n: u64, salt: u64) -> Self {
        assert!(n > 0, "empty permutation");
        let bits = (64 - (n - 1).leading_zeros()).max(2);
        let half_bits = bits.div_ceil(2);
        let keys = [1u64, 2, 3, 4].map(|k| mix(salt ^ k.wrapping_mul(GOLDEN_GAMMA)));
        Perm { n, half_bits, keys }
    }

    fn feistel(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for key in self.keys {
            let f = mix(right ^ key) & mask;
            (left, right) = (right, left ^ f);
        }
        (left << self.half_bits) | right
    }

    fn apply(&self, index: u64) -> u64 {
        debug_assert!(index < self.n);
        let mut x = index;
        loop {
            x = self.feistel(x);
            if x < self.n {
                return x;
            }
        }
    }
}

/// Cumulative weights for picking an index.
struct Weights {
    cumulative: Vec<u64>,
}

impl Weights {
    fn new(weights: impl IntoIterator<Item = u64>) -> Self {
        let cumulative = weights
            .into_iter()
            .scan(0, |sum, w| {
                *sum += w;
                Some(*sum)
            })
            .collect();
        Weights { cumulative }
    }

    fn pick(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().expect("non-empty weights");
        let x = rng.below(total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

// ---------------------------------------------------------------------------------------
// The world: sizes and shared tables
// ---------------------------------------------------------------------------------------

/// Birth dates of residents: 1925-01-01 ..= 2024-12-31.
const BIRTH_FIRST: i32 = days_from_civil(1925, 1, 1);
const BIRTH_DAYS: u64 = (days_from_civil(2025, 1, 1) - BIRTH_FIRST) as u64;
/// Sequence numbers 001..=999.
const ID_SEQUENCES: u64 = 999;
/// Working age in 2024 (18 to 60): born 1964-01-01 ..= 2006-12-31.
const WORKING_BORN_FIRST: i32 = days_from_civil(1964, 1, 1);
const WORKING_BORN_LAST: i32 = days_from_civil(2006, 12, 31);
const LAST_DAY: i32 = days_from_civil(2024, 12, 31);
/// Shanghai's 2024 contribution base bounds, CNY.
const BASE_MIN_YUAN: i64 = 7_310;
const BASE_MAX_YUAN: i64 = 36_549;
/// Organisation codes are "MA" + 6 characters of the USCC alphabet.
const ORG_SERIALS: u64 = 31u64.pow(6);
/// POI and licence numbers have 10 digits.
const TEN_DIGITS: u64 = 10_000_000_000;

struct World {
    residents: u64,
    enterprises: u64,
    poi: u64,
    licences: u64,
    contributor_block: u64,
    resident_key: Perm,
    contributor_perm: Perm,
    enterprise_key: Perm,
    /// 10-digit serials of POI and licence IDs.
    poi_key: Perm,
    licence_key: Perm,
    districts: Weights,
    rural_districts: Weights,
    surnames: Weights,
    poi_categories: Weights,
    licence_types: Weights,
}

impl World {
    fn new(residents: u64) -> Result<Self> {
        if residents == 0 {
            bail!("example-data needs at least one resident");
        }
        if residents > MAX_RESIDENTS {
            bail!("example-data supports at most {MAX_RESIDENTS} residents, not {residents}");
        }
        let enterprises = residents.div_ceil(20);
        let contributors = residents.div_ceil(12);
        let key_space = district::CURRENT.len() as u64 * BIRTH_DAYS * ID_SEQUENCES;
        Ok(World {
            residents,
            enterprises,
            poi: residents.div_ceil(10),
            licences: residents.div_ceil(10),
            contributor_block: residents / contributors,
            resident_key: Perm::new(key_space, salt::RESIDENT_KEY),
            contributor_perm: Perm::new(residents, salt::CONTRIBUTOR_PERM),
            enterprise_key: Perm::new(ORG_SERIALS, salt::ENTERPRISE_KEY),
            poi_key: Perm::new(TEN_DIGITS, salt::POI_KEY),
            licence_key: Perm::new(TEN_DIGITS, salt::LICENCE_KEY),
            districts: Weights::new(
                district::CURRENT
                    .iter()
                    .map(|d| u64::from(d.population_2020)),
            ),
            rural_districts: Weights::new(district::CURRENT.iter().map(|d| {
                if is_rural(d.code) {
                    u64::from(d.population_2020)
                } else {
                    0
                }
            })),
            surnames: Weights::new(SURNAMES.iter().map(|&(_, w)| w)),
            poi_categories: Weights::new(POI_CATEGORIES.iter().map(|&(_, w)| w)),
            licence_types: Weights::new(LICENCE_TYPES.iter().map(|t| t.weight)),
        })
    }
}

/// Districts with farmland, where cooperatives are registered.
const RURAL_DISTRICTS: &[&str] = &[
    "310112", "310113", "310114", "310115", "310116", "310117", "310118", "310120", "310151",
];

fn is_rural(code: &str) -> bool {
    RURAL_DISTRICTS.contains(&code)
}

/// Writes `value` as fixed-width decimal digits filling `buf`.
fn put_digits(buf: &mut [u8], mut value: u64) {
    for b in buf.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("generated codes are ASCII")
}

/// `days` moved by whole years; 29 February becomes 28 February in common years.
fn add_years(days: i32, years: i32) -> i32 {
    let (y, m, d) = civil_from_days(days);
    let y = y + years;
    let d = d.min(bund_udfs::domain::days_in_month(y, m));
    days_from_civil(y, m, d)
}

// ---------------------------------------------------------------------------------------
// police.residents
// ---------------------------------------------------------------------------------------

/// The identity part of a resident: a pure function of the index.
#[derive(Clone, Copy)]
struct Person {
    id_card: [u8; 18],
    birth: i32,
}

impl Person {
    fn id(&self) -> &str {
        ascii(&self.id_card)
    }

    fn is_male(&self) -> bool {
        (self.id_card[16] - b'0') % 2 == 1
    }
}

/// Resident `index`'s ID number: the index goes through a keyed permutation of the key
/// space (16 districts × 36,525 birth dates × 999 sequences), so numbers are unique.
fn person(world: &World, index: u64) -> Person {
    let key = world.resident_key.apply(index);
    let per_district = BIRTH_DAYS * ID_SEQUENCES;
    let district = &district::CURRENT[(key / per_district) as usize];
    let day = (key % per_district) / ID_SEQUENCES;
    let sequence = key % ID_SEQUENCES + 1;
    let birth = BIRTH_FIRST + day as i32;
    let (y, m, d) = civil_from_days(birth);
    let mut id = [0u8; 18];
    id[..6].copy_from_slice(district.code.as_bytes());
    put_digits(&mut id[6..10], y as u64);
    put_digits(&mut id[10..12], u64::from(m));
    put_digits(&mut id[12..14], u64::from(d));
    put_digits(&mut id[14..17], sequence);
    id[17] = id_card::check_char(&id[..17]).expect("17 digits");
    Person { id_card: id, birth }
}

/// Resident `index`'s ID number, as written in `police.residents`.
#[cfg(test)]
pub(crate) fn resident_id_card(index: u64, residents: u64) -> String {
    let world = World::new(residents).expect("valid resident count");
    person(&world, index).id().to_owned()
}

/// A random existing resident satisfying `accept`, trying a bounded number of times (the
/// last candidate is returned if none qualifies, which only tiny data sets can hit).
fn pick_person(world: &World, rng: &mut Rng, accept: impl Fn(&Person) -> bool) -> Person {
    let mut candidate = person(world, rng.below(world.residents));
    for _ in 0..64 {
        if accept(&candidate) {
            break;
        }
        candidate = person(world, rng.below(world.residents));
    }
    candidate
}

/// Households: each block of 10 residents forms 4 households, sized by a per-block pattern
/// (2.5 residents per household on average).
const HOUSEHOLD_PATTERNS: [[u64; 4]; 6] = [
    [1, 3, 3, 3],
    [2, 2, 3, 3],
    [1, 2, 3, 4],
    [2, 2, 2, 4],
    [1, 1, 4, 4],
    [2, 3, 2, 3],
];

fn household_of(index: u64) -> u64 {
    let block = index / 10;
    let pattern = Rng::new(salt::HOUSEHOLD_BLOCK, block).pick(&HOUSEHOLD_PATTERNS);
    let mut offset = index % 10;
    let mut slot = 0;
    while offset >= pattern[slot] {
        offset -= pattern[slot];
        slot += 1;
    }
    block * 4 + slot as u64
}

/// A household: where it lives and the surname most of its members share.
struct Household {
    index: u64,
    district: usize,
    surname: &'static str,
    address: String,
}

impl Household {
    fn empty() -> Self {
        Household {
            index: u64::MAX,
            district: 0,
            surname: "",
            address: String::with_capacity(96),
        }
    }

    /// Makes this household number `index`, reusing the address buffer.
    fn load(&mut self, world: &World, index: u64) {
        let mut rng = Rng::new(salt::HOUSEHOLD, index);
        self.index = index;
        self.district = write_address(world, &mut rng, &mut self.address);
        self.surname = SURNAMES[world.surnames.pick(&mut rng)].0;
    }
}

/// Writes an address and returns its district index.
fn write_address(world: &World, rng: &mut Rng, out: &mut String) -> usize {
    let d = world.districts.pick(rng);
    let district = &district::CURRENT[d];
    let town = rng.pick(TOWNS[d]);
    let road = rng.pick(ROADS);
    out.clear();
    let _ = write!(out, "上海市{}{}{}", district.name_zh, town, road);
    if rng.chance(650) {
        let _ = write!(out, "{}弄{}号", rng.between(1, 1800), rng.between(1, 60));
    } else {
        let _ = write!(out, "{}号", rng.between(1, 2500));
    }
    let floor = if rng.chance(700) {
        rng.between(1, 7)
    } else {
        rng.between(8, 33)
    };
    let _ = write!(out, "{}{:02}室", floor, rng.between(1, 6));
    d
}

fn write_name(
    world: &World,
    rng: &mut Rng,
    person: &Person,
    household_surname: &str,
    out: &mut String,
) {
    out.clear();
    // Most members carry the household's surname (children, the head); spouses keep theirs.
    let own = SURNAMES[world.surnames.pick(rng)].0;
    out.push_str(if rng.chance(650) {
        household_surname
    } else {
        own
    });
    let year = civil_from_days(person.birth).0;
    let male = person.is_male();
    let era = match year {
        ..1960 => 0,
        1960..1980 => 1,
        1980..2000 => 2,
        2000..2010 => 3,
        _ => 4,
    };
    let (era_names, chars) = if male {
        (ERA_NAMES_MALE[era], GIVEN_MALE)
    } else {
        (ERA_NAMES_FEMALE[era], GIVEN_FEMALE)
    };
    // Single-character given names were common for the old and are rare for the young.
    let single = [350, 300, 250, 120, 60][era];
    let roll = rng.below(1000);
    if roll < single {
        out.push_str(rng.pick(chars));
    } else if roll < single + 300 {
        out.push_str(rng.pick(era_names));
    } else {
        out.push_str(rng.pick(chars));
        out.push_str(rng.pick(GIVEN_ANY));
    }
}

fn write_phone(rng: &mut Rng, out: &mut String) {
    out.clear();
    let _ = write!(
        out,
        "{}{:08}",
        rng.pick(MOBILE_PREFIXES),
        rng.below(100_000_000)
    );
}

fn residents_batch(world: &World, rows: std::ops::Range<u64>) -> Vec<ArrayRef> {
    let n = (rows.end - rows.start) as usize;
    let mut id_card = StringBuilder::with_capacity(n, n * 18);
    let mut name = StringBuilder::with_capacity(n, n * 9);
    let mut sex = StringBuilder::with_capacity(n, n);
    let mut birth_date = Date32Builder::with_capacity(n);
    let mut phone = StringBuilder::with_capacity(n, n * 11);
    let mut district_code = StringBuilder::with_capacity(n, n * 6);
    let mut address = StringBuilder::with_capacity(n, n * 72);
    let mut household_id = StringBuilder::with_capacity(n, n * 15);
    let mut buf = String::with_capacity(128);
    let mut home = Household::empty();
    for index in rows {
        let p = person(world, index);
        let mut rng = Rng::new(salt::RESIDENT, index);
        let h = household_of(index);
        if home.index != h {
            home.load(world, h);
        }
        id_card.append_value(p.id());
        write_name(world, &mut rng, &p, home.surname, &mut buf);
        name.append_value(&buf);
        sex.append_value(if p.is_male() { "M" } else { "F" });
        birth_date.append_value(p.birth);
        if rng.chance(20) {
            phone.append_null();
        } else {
            write_phone(&mut rng, &mut buf);
            phone.append_value(&buf);
        }
        let code = district::CURRENT[home.district].code;
        district_code.append_value(code);
        address.append_value(&home.address);
        buf.clear();
        let _ = write!(buf, "H{code}{h:08}");
        household_id.append_value(&buf);
    }
    vec![
        Arc::new(id_card.finish()),
        Arc::new(name.finish()),
        Arc::new(sex.finish()),
        Arc::new(birth_date.finish()),
        Arc::new(phone.finish()),
        Arc::new(district_code.finish()),
        Arc::new(address.finish()),
        Arc::new(household_id.finish()),
    ]
}

// ---------------------------------------------------------------------------------------
// market.enterprises
// ---------------------------------------------------------------------------------------

/// The identity part of an enterprise: a pure function of the index.
#[derive(Clone, Copy)]
struct Enterprise {
    uscc: [u8; 18],
    /// Entity type character: b'1' enterprise, b'2' individual business, b'3' cooperative.
    kind: u8,
    district: usize,
    founded_on: i32,
}

impl Enterprise {
    fn uscc(&self) -> &str {
        ascii(&self.uscc)
    }
}

const FOUNDED_FIRST: i32 = days_from_civil(1990, 1, 1);
/// The farmers' cooperative law took effect on 2007-07-01.
const COOPERATIVES_FIRST: i32 = days_from_civil(2007, 7, 1);

/// Enterprise `index`: authority 9, an organisation code "MA" + 6 characters taken from a
/// keyed permutation of the index (so codes are unique), both check characters computed.
fn enterprise(world: &World, index: u64) -> Enterprise {
    let mut rng = Rng::new(salt::ENTERPRISE, index);
    let kind = match rng.below(1000) {
        0..880 => b'1',
        880..980 => b'2',
        _ => b'3',
    };
    let district = if kind == b'3' {
        world.rural_districts.pick(&mut rng)
    } else {
        world.districts.pick(&mut rng)
    };
    let first = if kind == b'3' {
        COOPERATIVES_FIRST
    } else {
        FOUNDED_FIRST
    };
    let founded_on = rng.between(i64::from(first), i64::from(LAST_DAY)) as i32;

    let mut code = [0u8; 18];
    code[0] = b'9';
    code[1] = kind;
    code[2..8].copy_from_slice(district::CURRENT[district].code.as_bytes());
    code[8..10].copy_from_slice(b"MA");
    let mut serial = world.enterprise_key.apply(index);
    for c in code[10..16].iter_mut().rev() {
        *c = uscc::ALPHABET[(serial % 31) as usize];
        serial /= 31;
    }
    code[16] = uscc::org_code_check_char(&code[8..16]).expect("alphabet characters");
    code[17] = uscc::check_char(&code[..17]).expect("alphabet characters");
    Enterprise {
        uscc: code,
        kind,
        district,
        founded_on,
    }
}

/// A district name without its 区 / 新区 suffix (浦东新区 → 浦东).
fn district_short(name_zh: &str) -> &str {
    name_zh.trim_end_matches('区').trim_end_matches('新')
}

fn enterprises_batch(world: &World, rows: std::ops::Range<u64>) -> Result<Vec<ArrayRef>> {
    let n = (rows.end - rows.start) as usize;
    let mut code = StringBuilder::with_capacity(n, n * 18);
    let mut name = StringBuilder::with_capacity(n, n * 40);
    let mut legal_rep = StringBuilder::with_capacity(n, n * 18);
    let mut district_code = StringBuilder::with_capacity(n, n * 6);
    let mut capital = Decimal128Builder::with_capacity(n).with_precision_and_scale(18, 2)?;
    let mut founded_on = Date32Builder::with_capacity(n);
    let mut status = StringBuilder::with_capacity(n, n * 6);
    let mut buf = String::with_capacity(96);
    for index in rows {
        let e = enterprise(world, index);
        let mut rng = Rng::new(salt::ENTERPRISE_DETAIL, index);
        let district = &district::CURRENT[e.district];
        code.append_value(e.uscc());

        buf.clear();
        let trade = rng.pick(TRADE_NAMES);
        let capital_yuan: i64 = match e.kind {
            b'1' => {
                let industry = rng.pick(INDUSTRIES);
                let suffix = match rng.below(100) {
                    0..80 => "有限公司",
                    80..94 => "有限责任公司",
                    _ => "股份有限公司",
                };
                let _ = write!(
                    buf,
                    "上海{}{trade}{industry}{suffix}",
                    district_short(district.name_zh)
                );
                // Log-uniform from 10 thousand to 100 million yuan, in units of 10,000.
                let yuan = 10f64.powf(4.0 + 4.0 * rng.unit());
                ((yuan / 10_000.0).round() as i64).max(1) * 10_000
            }
            b'2' => {
                let _ = write!(buf, "{}{trade}{}", district.name_zh, rng.pick(SHOPS));
                rng.between(1, 500) * 1_000
            }
            _ => {
                let _ = write!(buf, "上海{trade}{}专业合作社", rng.pick(COOPERATIVES));
                rng.between(10, 500) * 10_000
            }
        };
        name.append_value(&buf);

        // The legal representative was an adult when the enterprise was founded.
        let adult_by = add_years(e.founded_on, -18);
        let rep = pick_person(world, &mut rng, |p| p.birth <= adult_by);
        legal_rep.append_value(rep.id());
        district_code.append_value(district.code);
        capital.append_value(i128::from(capital_yuan) * 100);
        founded_on.append_value(e.founded_on);
        let s = match rng.below(1000) {
            0..800 => "存续",
            800..880 => "在业",
            880..920 => "吊销",
            920..980 => "注销",
            _ => "迁出",
        };
        status.append_value(s);
    }
    Ok(vec![
        Arc::new(code.finish()),
        Arc::new(name.finish()),
        Arc::new(legal_rep.finish()),
        Arc::new(district_code.finish()),
        Arc::new(capital.finish()),
        Arc::new(founded_on.finish()),
        Arc::new(status.finish()),
    ])
}

// ---------------------------------------------------------------------------------------
// hrss.contributions
// ---------------------------------------------------------------------------------------

fn is_working_age(p: &Person) -> bool {
    (WORKING_BORN_FIRST..=WORKING_BORN_LAST).contains(&p.birth)
}

/// One contributor's year: 12 monthly rows share it.
struct Contributor {
    person: Person,
    employer: Enterprise,
    /// Month (0-based) from which `second_employer` pays, if the person changed jobs.
    switch_month: u64,
    second_employer: Enterprise,
    base_cents: i128,
}

/// Contributor `c`: the first working-age resident among its own block of a keyed
/// permutation of all residents. Blocks are disjoint, so contributors are distinct people.
/// The rare block with nobody of working age (about 1 in 1,000) borrows from block `c + t`
/// its working-age member of rank `t` (0-based): owners take rank 0 and each borrower a rank
/// equal to its distance, so no two contributors are the same person.
fn contributor(world: &World, c: u64) -> Contributor {
    let working_in_block = |block: u64| {
        let size = world.contributor_block;
        (block * size..(block + 1) * size)
            .map(|j| person(world, world.contributor_perm.apply(j)))
            .filter(is_working_age)
    };
    let contributors = world.residents / world.contributor_block;
    let mut rng = Rng::new(salt::CONTRIBUTOR, c);
    let person = working_in_block(c)
        .next()
        .or_else(|| {
            (1..contributors.min(64))
                .find_map(|t| working_in_block((c + t) % contributors).nth(t as usize))
        })
        // Only tiny data sets get here.
        .unwrap_or_else(|| pick_person(world, &mut rng, is_working_age));
    let employer = enterprise(world, rng.below(world.enterprises));
    let (switch_month, second_employer) = if rng.chance(60) {
        (
            rng.between(1, 11) as u64,
            enterprise(world, rng.below(world.enterprises)),
        )
    } else {
        (12, employer)
    };
    let base_yuan = match rng.below(100) {
        // Many employers declare the minimum base, a few the cap.
        0..30 => BASE_MIN_YUAN,
        30..35 => BASE_MAX_YUAN,
        _ => {
            let ln = (BASE_MIN_YUAN as f64).ln()
                + rng.unit() * ((BASE_MAX_YUAN as f64).ln() - (BASE_MIN_YUAN as f64).ln());
            (ln.exp().round() as i64).clamp(BASE_MIN_YUAN, BASE_MAX_YUAN)
        }
    };
    Contributor {
        person,
        employer,
        switch_month,
        second_employer,
        base_cents: i128::from(base_yuan) * 100,
    }
}

/// The employee's share (pension 8 % + medical 2 % + unemployment 0.5 %), rounded half up
/// to cents.
fn employee_share_cents(base_cents: i128) -> i128 {
    (base_cents * 105 + 500) / 1000
}

fn contributions_batch(world: &World, rows: std::ops::Range<u64>) -> Result<Vec<ArrayRef>> {
    let n = (rows.end - rows.start) as usize;
    let mut id_card = StringBuilder::with_capacity(n, n * 18);
    let mut employer = StringBuilder::with_capacity(n, n * 18);
    let mut month = StringBuilder::with_capacity(n, n * 7);
    let mut base = Decimal128Builder::with_capacity(n).with_precision_and_scale(12, 2)?;
    let mut amount = Decimal128Builder::with_capacity(n).with_precision_and_scale(12, 2)?;
    let mut current: Option<(u64, Contributor)> = None;
    for row in rows {
        let (c, m) = (row / 12, row % 12);
        let cached = match current.take() {
            Some((cached_c, contributor)) if cached_c == c => (c, contributor),
            _ => (c, contributor(world, c)),
        };
        let who = &cached.1;
        id_card.append_value(who.person.id());
        let payer = if m >= who.switch_month {
            &who.second_employer
        } else {
            &who.employer
        };
        employer.append_value(payer.uscc());
        month.append_value(MONTHS[m as usize]);
        base.append_value(who.base_cents);
        amount.append_value(employee_share_cents(who.base_cents));
        current = Some(cached);
    }
    Ok(vec![
        Arc::new(id_card.finish()),
        Arc::new(employer.finish()),
        Arc::new(month.finish()),
        Arc::new(base.finish()),
        Arc::new(amount.finish()),
    ])
}

const MONTHS: [&str; 12] = [
    "2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06", "2024-07", "2024-08",
    "2024-09", "2024-10", "2024-11", "2024-12",
];

// ---------------------------------------------------------------------------------------
// planning.poi
// ---------------------------------------------------------------------------------------

/// A town name without its 街道 / 镇 / 乡 suffix (张江镇 → 张江).
fn town_short(town: &str) -> &str {
    let t = town.trim_end_matches("街道");
    let t = t.strip_suffix("新镇").unwrap_or(t);
    t.trim_end_matches('镇').trim_end_matches('乡')
}

fn write_poi_name(rng: &mut Rng, category: &str, d: usize, out: &mut String) {
    let district = district::CURRENT[d].name_zh;
    let town = rng.pick(TOWNS[d]);
    let place = town_short(town);
    let road = rng.pick(ROADS);
    let trade = rng.pick(TRADE_NAMES);
    out.clear();
    let _ = match category {
        "餐饮" => write!(out, "{trade}{}({road}店)", rng.pick(EATERIES)),
        "便利店" => write!(out, "{}({road}店)", rng.pick(CONVENIENCE_CHAINS)),
        "超市" => write!(out, "{}({place}店)", rng.pick(SUPERMARKETS)),
        "药店" => write!(out, "{}({road}店)", rng.pick(PHARMACIES)),
        "学校" => write!(out, "{district}{place}{}", rng.pick(SCHOOLS)),
        "医院" if rng.chance(650) => write!(out, "{district}{place}社区卫生服务中心"),
        "医院" => write!(out, "{district}{}", rng.pick(HOSPITALS)),
        "公园" => write!(out, "{place}{}", rng.pick(PARKS)),
        "地铁站" => write!(out, "{}站", road.trim_end_matches('路')),
        "商场" => write!(out, "{trade}{}", rng.pick(MALLS)),
        "银行" => write!(out, "{}上海{place}支行", rng.pick(BANKS)),
        "政府机构" if rng.chance(500) => {
            let office = if town.ends_with("街道") {
                "办事处"
            } else {
                "人民政府"
            };
            write!(out, "{district}{town}{office}")
        }
        "政府机构" => write!(out, "{district}{}", rng.pick(DISTRICT_OFFICES)),
        "酒店" => write!(out, "{trade}{}", rng.pick(HOTELS)),
        "加油站" => write!(out, "{}{road}加油站", rng.pick(FUEL_BRANDS)),
        _ => write!(out, "{trade}{category}({road}店)"),
    };
}

/// Rounds to 6 decimals (about 0.1 m), as published coordinates are.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn poi_batch(world: &World, rows: std::ops::Range<u64>) -> Vec<ArrayRef> {
    let n = (rows.end - rows.start) as usize;
    let mut poi_id = StringBuilder::with_capacity(n, n * 13);
    let mut name = StringBuilder::with_capacity(n, n * 30);
    let mut category = StringBuilder::with_capacity(n, n * 9);
    let mut district_code = StringBuilder::with_capacity(n, n * 6);
    let mut lon_wgs = Float64Builder::with_capacity(n);
    let mut lat_wgs = Float64Builder::with_capacity(n);
    let mut lon_gcj = Float64Builder::with_capacity(n);
    let mut lat_gcj = Float64Builder::with_capacity(n);
    let mut buf = String::with_capacity(64);
    for index in rows {
        let mut rng = Rng::new(salt::POI, index);
        buf.clear();
        let _ = write!(buf, "POI{:010}", world.poi_key.apply(index));
        poi_id.append_value(&buf);
        let cat = POI_CATEGORIES[world.poi_categories.pick(&mut rng)].0;
        let d = world.districts.pick(&mut rng);
        write_poi_name(&mut rng, cat, d, &mut buf);
        name.append_value(&buf);
        category.append_value(cat);
        district_code.append_value(district::CURRENT[d].code);
        let (c_lon, c_lat) = district::CURRENT[d]
            .centroid_wgs84
            .expect("current districts have centroids");
        let (h_lon, h_lat) = DISTRICT_HALF_EXTENT[d];
        // Triangular around the centroid: denser in the middle of the box.
        let lon = round6(c_lon + h_lon * (rng.unit() + rng.unit() - 1.0));
        let lat = round6(c_lat + h_lat * (rng.unit() + rng.unit() - 1.0));
        let (g_lon, g_lat) = coords::wgs84_to_gcj02(lon, lat);
        lon_wgs.append_value(lon);
        lat_wgs.append_value(lat);
        lon_gcj.append_value(g_lon);
        lat_gcj.append_value(g_lat);
    }
    vec![
        Arc::new(poi_id.finish()),
        Arc::new(name.finish()),
        Arc::new(category.finish()),
        Arc::new(district_code.finish()),
        Arc::new(lon_wgs.finish()),
        Arc::new(lat_wgs.finish()),
        Arc::new(lon_gcj.finish()),
        Arc::new(lat_gcj.finish()),
    ]
}

// ---------------------------------------------------------------------------------------
// licence.licences
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Holder {
    Person,
    Business,
}

/// How long a licence is valid.
#[derive(Clone, Copy)]
enum Validity {
    /// Never expires (NULL `expires_on`).
    LongTerm,
    /// Expires after this many years (the day before the anniversary).
    Years(i32),
    /// Business licence: long-term, sometimes a fixed 20-year term.
    BusinessLicence,
    /// ID card: 5 / 10 / 20 years or long-term by age at issue.
    IdCard,
    /// Driving licence: 6 years, then 10, then long-term.
    Driving,
}

struct LicenceType {
    name: &'static str,
    code: &'static str,
    holder: Holder,
    weight: u64,
    /// Earliest issue date (the regime's start).
    first_issue: i32,
    /// Minimum age of a personal holder at issue.
    min_age: i32,
    validity: Validity,
}

#[rustfmt::skip]
const LICENCE_TYPES: &[LicenceType] = &[
    LicenceType { name: "营业执照", code: "YZ", holder: Holder::Business, weight: 250, first_issue: FOUNDED_FIRST, min_age: 0, validity: Validity::BusinessLicence },
    LicenceType { name: "食品经营许可证", code: "SP", holder: Holder::Business, weight: 120, first_issue: days_from_civil(2015, 10, 1), min_age: 0, validity: Validity::Years(5) },
    LicenceType { name: "卫生许可证", code: "WS", holder: Holder::Business, weight: 30, first_issue: days_from_civil(2000, 1, 1), min_age: 0, validity: Validity::Years(4) },
    LicenceType { name: "道路运输经营许可证", code: "DY", holder: Holder::Business, weight: 30, first_issue: days_from_civil(2000, 1, 1), min_age: 0, validity: Validity::Years(6) },
    LicenceType { name: "居民身份证电子证照", code: "SF", holder: Holder::Person, weight: 250, first_issue: days_from_civil(2019, 1, 1), min_age: 0, validity: Validity::IdCard },
    LicenceType { name: "驾驶证", code: "JZ", holder: Holder::Person, weight: 180, first_issue: days_from_civil(1990, 1, 1), min_age: 18, validity: Validity::Driving },
    LicenceType { name: "不动产权证书", code: "BD", holder: Holder::Person, weight: 120, first_issue: days_from_civil(2015, 3, 1), min_age: 18, validity: Validity::LongTerm },
    LicenceType { name: "医师执业证书", code: "YS", holder: Holder::Person, weight: 20, first_issue: days_from_civil(1999, 5, 1), min_age: 24, validity: Validity::LongTerm },
];

fn expiry(
    validity: Validity,
    rng: &mut Rng,
    issued: i32,
    holder_birth: Option<i32>,
) -> Option<i32> {
    let years = match validity {
        Validity::LongTerm => return None,
        Validity::Years(y) => y,
        Validity::BusinessLicence if rng.chance(900) => return None,
        Validity::BusinessLicence => 20,
        Validity::IdCard => {
            let birth = holder_birth.expect("ID cards have a personal holder");
            match civil_from_days(issued).0 - civil_from_days(birth).0 {
                ..16 => 5,
                16..26 => 10,
                26..46 => 20,
                _ => return None,
            }
        }
        Validity::Driving => match rng.below(10) {
            0..5 => 6,
            5..8 => 10,
            _ => return None,
        },
    };
    Some(add_years(issued, years) - 1)
}

fn licences_batch(world: &World, rows: std::ops::Range<u64>) -> Vec<ArrayRef> {
    let n = (rows.end - rows.start) as usize;
    let mut licence_id = StringBuilder::with_capacity(n, n * 14);
    let mut licence_type = StringBuilder::with_capacity(n, n * 18);
    let mut holder_id = StringBuilder::with_capacity(n, n * 18);
    let mut issued_on = Date32Builder::with_capacity(n);
    let mut expires_on = Date32Builder::with_capacity(n);
    let mut buf = String::with_capacity(32);
    for index in rows {
        let mut rng = Rng::new(salt::LICENCE, index);
        let t = &LICENCE_TYPES[world.licence_types.pick(&mut rng)];
        buf.clear();
        let _ = write!(buf, "SH{}{:010}", t.code, world.licence_key.apply(index));
        licence_id.append_value(&buf);
        licence_type.append_value(t.name);
        let (holder_birth, earliest) = match t.holder {
            Holder::Business => {
                let e = enterprise(world, rng.below(world.enterprises));
                holder_id.append_value(e.uscc());
                let earliest = if matches!(t.validity, Validity::BusinessLicence) {
                    e.founded_on
                } else {
                    e.founded_on.max(t.first_issue)
                };
                (None, earliest)
            }
            Holder::Person => {
                let latest_birth = add_years(LAST_DAY, -t.min_age);
                let p = pick_person(world, &mut rng, |p| p.birth <= latest_birth);
                holder_id.append_value(p.id());
                (
                    Some(p.birth),
                    add_years(p.birth, t.min_age).max(t.first_issue),
                )
            }
        };
        // Business licences date from the founding; others fall anywhere after `earliest`.
        let issued = if matches!(t.validity, Validity::BusinessLicence) {
            earliest
        } else {
            rng.between(i64::from(earliest.min(LAST_DAY)), i64::from(LAST_DAY)) as i32
        };
        issued_on.append_value(issued);
        expires_on.append_option(expiry(t.validity, &mut rng, issued, holder_birth));
    }
    vec![
        Arc::new(licence_id.finish()),
        Arc::new(licence_type.finish()),
        Arc::new(holder_id.finish()),
        Arc::new(issued_on.finish()),
        Arc::new(expires_on.finish()),
    ]
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

struct Job {
    table: Table,
    part: u64,
    parts: u64,
    rows: std::ops::Range<u64>,
}

#[derive(Serialize)]
struct Manifest {
    residents: u64,
    tables: Vec<ManifestTable>,
    generator: &'static str,
    generator_version: u32,
}

#[derive(Serialize)]
struct ManifestTable {
    table: &'static str,
    path: &'static str,
    format: &'static str,
    files: u64,
    rows: u64,
}

/// Removes the temporary directory unless the data set was moved into place.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn generate_with(
    opts: &ExampleData,
    layout: &Layout,
    threads: usize,
) -> Result<Vec<(String, u64)>> {
    let started = Instant::now();
    let world = World::new(opts.residents)?;
    let out = &opts.out;
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tmp = TempDir {
        path: out.join(format!(".example-data.tmp-{}", std::process::id())),
        keep: false,
    };
    if tmp.path.exists() {
        fs::remove_dir_all(&tmp.path)
            .with_context(|| format!("removing {}", tmp.path.display()))?;
    }

    let mut jobs = Vec::new();
    for table in Table::ALL {
        fs::create_dir_all(tmp.path.join(table.dir()))
            .with_context(|| format!("creating {}", tmp.path.join(table.dir()).display()))?;
        let rows = table.rows(&world);
        let parts = table.parts(rows, layout);
        let part_rows = rows.div_ceil(parts.max(1)).max(1);
        for part in 0..parts {
            let start = part * part_rows;
            jobs.push(Job {
                table,
                part,
                parts,
                rows: start..(start + part_rows).min(rows),
            });
        }
    }
    // Largest parts first, so workers finish together.
    jobs.sort_by_key(|j| std::cmp::Reverse(j.rows.end - j.rows.start));
    let total_rows: u64 = jobs.iter().map(|j| j.rows.end - j.rows.start).sum();
    let verbose = total_rows >= 4 * Layout::DEFAULT.part_rows;

    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    if let Err(e) = write_part(&world, layout, &tmp.path, job) {
                        failed.store(true, Ordering::Relaxed);
                        first_error
                            .lock()
                            .expect("no panics while held")
                            .get_or_insert(e);
                        break;
                    }
                    if verbose {
                        eprintln!(
                            "example-data: {} part {}/{} ({} rows) written after {:.1}s",
                            job.table.qualified_name(),
                            job.part + 1,
                            job.parts,
                            job.rows.end - job.rows.start,
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("no panics while held") {
        return Err(e);
    }

    let counts: Vec<(String, u64)> = Table::ALL
        .iter()
        .map(|t| (t.qualified_name().to_owned(), t.rows(&world)))
        .collect();
    let manifest = Manifest {
        residents: world.residents,
        tables: Table::ALL
            .iter()
            .map(|&t| ManifestTable {
                table: t.qualified_name(),
                path: t.dir(),
                format: t.extension(),
                files: t.parts(t.rows(&world), layout),
                rows: t.rows(&world),
            })
            .collect(),
        generator: concat!("bund example-data ", env!("CARGO_PKG_VERSION")),
        generator_version: GENERATOR_VERSION,
    };
    install(out, &tmp.path, &manifest)?;
    if verbose {
        eprintln!(
            "example-data: {total_rows} rows in {:.1}s into {}",
            started.elapsed().as_secs_f64(),
            out.display()
        );
    }
    Ok(counts)
}

/// Moves the finished tables from `tmp` into `out`, replacing earlier ones, and writes the
/// manifest last: until it exists the directory does not claim to hold a data set.
fn install(out: &Path, tmp: &Path, manifest: &Manifest) -> Result<()> {
    let manifest_path = out.join(MANIFEST);
    if manifest_path.exists() {
        fs::remove_file(&manifest_path)
            .with_context(|| format!("removing {}", manifest_path.display()))?;
    }
    for table in Table::ALL {
        let target = out.join(table.dir());
        if target.exists() {
            fs::remove_dir_all(&target)
                .with_context(|| format!("removing {}", target.display()))?;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::rename(tmp.join(table.dir()), &target)
            .with_context(|| format!("moving {} into place", target.display()))?;
    }
    let tmp_manifest = tmp.join(MANIFEST);
    let mut json = serde_json::to_string_pretty(manifest)?;
    json.push('\n');
    fs::write(&tmp_manifest, json)
        .with_context(|| format!("writing {}", tmp_manifest.display()))?;
    fs::rename(&tmp_manifest, &manifest_path)
        .with_context(|| format!("writing {}", manifest_path.display()))?;
    Ok(())
}

/// Rows in a data page of a table with lookup columns: in a row group sorted by ID number
/// a lookup decodes one such page of each column (to skip to the row it returns). 1 M
/// residents on 2026-12-07 (DataFusion 55 with `pushdown_filters`, in-process): 9.6 ms a
/// lookup with unsorted row groups, 6.4 ms sorted in pages of 20,000 rows (the writer's
/// default), 3.8 ms in pages of 8,192; on 2026-12-08, with names plain, 2.0-2.6 ms in pages
/// of 2,048 and 1.9-2.3 ms of 1,024, but DuckDB's scan of the 23 % district then fell from
/// 2.6 to 1.7 M rows/s (2,048: 2.6; DataFusion's the same for all three).
const LOOKUP_PAGE_ROWS: usize = 2048;

/// False positives a lookup column's bloom filter is sized for (see `parquet_properties`).
const LOOKUP_BLOOM_FPP: f64 = 0.03;

fn parquet_properties(table: Table, layout: &Layout) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(layout.row_group_rows))
        .set_dictionary_enabled(false);
    for column in table.dictionary_columns() {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*column), true);
    }
    if table.clustered_by().is_some() {
        props = props.set_data_page_row_count_limit(LOOKUP_PAGE_ROWS);
    }
    // A lookup reads the bloom filter of every row group, and a filter's size is rounded up
    // to a power of two: for 131,072 values, 1 % false positives needs 159 KiB and so takes
    // 256 KiB; 3 % needs 126 KiB and fits 128 KiB (8 bits a value). On 10 M residents that
    // is 10 MiB read per lookup instead of 20; a false positive costs one page of 2,048
    // rows. (The page index, with each page's range, is written by default.)
    for column in table.lookup_columns() {
        let path = ColumnPath::from(*column);
        props = props
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_fpp(path.clone(), LOOKUP_BLOOM_FPP)
            .set_column_bloom_filter_max_ndv(path, layout.row_group_rows as u64);
    }
    props.build()
}

/// The rows `rows` of `table`, made `layout.batch_rows` at a time.
fn batches_of<'a>(
    world: &'a World,
    layout: &Layout,
    table: Table,
    rows: std::ops::Range<u64>,
) -> impl Iterator<Item = Result<RecordBatch>> + 'a {
    let (size, end) = (layout.batch_rows, rows.end);
    rows.step_by(size as usize)
        .map(move |start| table.batch(world, start..(start + size).min(end)))
}

fn write_part(world: &World, layout: &Layout, tmp: &Path, job: &Job) -> Result<()> {
    let path = tmp
        .join(job.table.dir())
        .join(job.table.file_name(job.part));
    if job.table.format() == Format::Sqlite {
        return write_sqlite(world, layout, &path, job);
    }
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let batches = batches_of(world, layout, job.table, job.rows.clone());
    match job.table.format() {
        Format::Parquet => {
            let props = parquet_properties(job.table, layout);
            let schema = job.table.schema();
            let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props))?;
            match job.table.clustered_by() {
                None => {
                    for batch in batches {
                        writer.write(&batch?)?;
                    }
                }
                Some(column) => {
                    // one row group at a time, sorted by its lookup column
                    let group_rows = layout.row_group_rows as u64;
                    for start in job.rows.clone().step_by(layout.row_group_rows) {
                        let end = (start + group_rows).min(job.rows.end);
                        let parts = batches_of(world, layout, job.table, start..end)
                            .collect::<Result<Vec<_>>>()?;
                        let group = concat_batches(&schema, &parts)?;
                        let key = group
                            .column_by_name(column)
                            .with_context(|| format!("internal: no column {column}"))?;
                        let order = sort_to_indices(key, None, None)?;
                        writer.write(&take_record_batch(&group, &order)?)?;
                        writer.flush()?;
                    }
                }
            }
            writer.close()?;
        }
        Format::Csv => {
            let mut writer = csv::WriterBuilder::new()
                .with_header(true)
                .build(BufWriter::new(file));
            for batch in batches {
                writer.write(&batch?)?;
            }
            writer.into_inner().flush()?;
        }
        Format::Sqlite => bail!("internal: SQLite tables are written by write_sqlite"),
    }
    Ok(())
}

/// The SQLite type a column is declared with: what Bund reads it back as.
fn sqlite_type(t: &DataType) -> Result<&'static str> {
    Ok(match t {
        DataType::Utf8 => "TEXT",
        DataType::Date32 => "DATE",
        DataType::Int64 => "INTEGER",
        DataType::Float64 => "REAL",
        other => bail!("no SQLite type for {other}"),
    })
}

/// A table as one SQLite database file: a table of the same name and columns (declared
/// types that Bund maps back to the same Arrow types), dates as `YYYY-MM-DD` text, all
/// rows in one transaction.
fn write_sqlite(world: &World, layout: &Layout, path: &Path, job: &Job) -> Result<()> {
    use datafusion::arrow::array::Array;
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let schema = job.table.schema();
    let mut conn =
        rusqlite::Connection::open(path).with_context(|| format!("creating {}", path.display()))?;
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let null = if f.is_nullable() { "" } else { " NOT NULL" };
        columns.push(format!(
            "\"{}\" {}{null}",
            f.name(),
            sqlite_type(f.data_type())?
        ));
    }
    let name = job.table.sql_name();
    conn.execute_batch(&format!("CREATE TABLE \"{name}\" ({})", columns.join(", ")))?;
    let tx = conn.transaction()?;
    {
        let placeholders = vec!["?"; columns.len()].join(", ");
        let mut insert = tx.prepare(&format!("INSERT INTO \"{name}\" VALUES ({placeholders})"))?;
        let options = FormatOptions::default();
        for batch in batches_of(world, layout, job.table, job.rows.clone()) {
            let batch = batch?;
            let formatters = batch
                .columns()
                .iter()
                .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut values: Vec<Option<String>> = vec![None; formatters.len()];
            for row in 0..batch.num_rows() {
                for (i, (f, col)) in formatters.iter().zip(batch.columns()).enumerate() {
                    values[i] = (!col.is_null(row)).then(|| f.value(row).to_string());
                }
                insert.execute(rusqlite::params_from_iter(values.iter()))?;
            }
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA journal_mode = DELETE;")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Word lists
// ---------------------------------------------------------------------------------------

/// Surnames with weights per 100,000 people: the national top 30 (张 first, as in
/// Shanghai), common Shanghai surnames, and a few compound surnames.
#[rustfmt::skip]
const SURNAMES: &[(&str, u64)] = &[
    ("张", 7_300), ("王", 7_000), ("李", 5_600), ("陈", 5_200), ("刘", 4_200), ("杨", 2_900),
    ("黄", 2_300), ("赵", 2_000), ("吴", 2_300), ("周", 2_100), ("徐", 2_400), ("孙", 1_400),
    ("马", 1_100), ("朱", 2_000), ("胡", 1_300), ("郭", 900), ("何", 1_000), ("高", 900),
    ("林", 1_000), ("罗", 800), ("郑", 900), ("梁", 600), ("谢", 700), ("宋", 700),
    ("唐", 700), ("许", 800), ("韩", 500), ("冯", 600), ("邓", 500), ("曹", 700),
    ("沈", 1_500), ("顾", 1_200), ("陆", 1_300), ("钱", 800), ("蒋", 700), ("姚", 700),
    ("施", 600), ("倪", 400), ("范", 500), ("金", 600), ("叶", 600), ("汪", 500),
    ("潘", 500), ("袁", 400), ("蔡", 500), ("戴", 400), ("丁", 400), ("严", 400),
    ("程", 400), ("任", 300), ("傅", 300), ("方", 400), ("杜", 300), ("苏", 300),
    ("卢", 300), ("魏", 300), ("彭", 300), ("吕", 300), ("薛", 300), ("毛", 300),
    ("欧阳", 80), ("上官", 10), ("诸葛", 8), ("司马", 8), ("司徒", 8), ("皇甫", 6),
    ("令狐", 5), ("夏侯", 3), ("慕容", 3),
];

#[rustfmt::skip]
const GIVEN_MALE: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华",
    "飞", "鑫", "波", "宇", "浩", "建", "国", "志", "文", "俊", "峰", "晨", "昊", "轩", "博",
];

#[rustfmt::skip]
const GIVEN_FEMALE: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "燕", "玲", "桂", "丹", "萍", "红",
    "玉", "兰", "婷", "雪", "琳", "慧", "颖", "洁", "倩", "欣", "怡", "佳", "雯", "琪", "晶",
];

/// Second characters that go with either sex.
#[rustfmt::skip]
const GIVEN_ANY: &[&str] = &[
    "华", "明", "文", "英", "晓", "海", "春", "月", "云", "清", "嘉", "安", "思", "宁", "子",
    "一", "梓", "辰", "新", "立",
];

/// Whole given names typical of each era: before 1960, 1960s-70s, 1980s-90s, 2000s, 2010s+.
#[rustfmt::skip]
const ERA_NAMES_MALE: [&[&str]; 5] = [
    &["建国", "建华", "国强", "国华", "德明", "志强", "玉山", "金宝"],
    &["建军", "卫东", "伟民", "国庆", "建平", "小龙", "红兵", "志刚"],
    &["俊杰", "晓东", "文斌", "志伟", "家豪", "子健", "海涛", "磊"],
    &["浩宇", "子轩", "宇航", "浩然", "俊熙", "博文", "梓豪", "天佑"],
    &["奕辰", "宇轩", "浩宇", "亦辰", "宇辰", "子墨", "宇航", "浩然", "梓豪", "亦宸"],
];

#[rustfmt::skip]
const ERA_NAMES_FEMALE: [&[&str]; 5] = [
    &["秀英", "桂英", "玉兰", "秀兰", "桂兰", "凤英", "玉珍", "美华"],
    &["丽华", "红梅", "海燕", "晓红", "丽萍", "春梅", "美玲", "雪芳"],
    &["婷婷", "晓燕", "静怡", "佳琪", "雅琴", "丹丹", "思琪", "静"],
    &["欣怡", "梓涵", "雨桐", "诗涵", "可欣", "佳怡", "梦瑶", "子涵"],
    &["一诺", "依诺", "欣怡", "梓涵", "语桐", "欣妍", "可欣", "语汐", "雨桐", "梦瑶"],
];

/// Allocated mobile prefixes 13x-19x (no 140, 154, 179, 194).
#[rustfmt::skip]
const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "145", "147", "150",
    "151", "152", "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177",
    "178", "180", "181", "182", "183", "184", "185", "186", "187", "188", "189", "191", "192",
    "193", "195", "196", "197", "198", "199",
];

/// Subdistricts and towns of each current district, in `district::CURRENT` order.
#[rustfmt::skip]
const TOWNS: [&[&str]; 16] = [
    &["外滩街道", "南京东路街道", "半淞园路街道", "小东门街道", "豫园街道", "老西门街道", "五里桥街道", "打浦桥街道", "淮海中路街道", "瑞金二路街道"],
    &["天平路街道", "湖南路街道", "斜土路街道", "枫林路街道", "长桥街道", "田林街道", "虹梅路街道", "康健新村街道", "徐家汇街道", "凌云路街道", "龙华街道", "漕河泾街道", "华泾镇"],
    &["华阳路街道", "江苏路街道", "新华路街道", "周家桥街道", "天山路街道", "仙霞新村街道", "虹桥街道", "程家桥街道", "北新泾街道", "新泾镇"],
    &["江宁路街道", "石门二路街道", "南京西路街道", "静安寺街道", "曹家渡街道", "天目西路街道", "北站街道", "宝山路街道", "共和新路街道", "大宁路街道", "彭浦新村街道", "临汾路街道", "芷江西路街道", "彭浦镇"],
    &["曹杨新村街道", "长风新村街道", "长寿路街道", "甘泉路街道", "石泉路街道", "宜川路街道", "万里街道", "真如镇街道", "长征镇", "桃浦镇"],
    &["欧阳路街道", "曲阳路街道", "广中路街道", "嘉兴路街道", "凉城新村街道", "四川北路街道", "北外滩街道", "江湾镇街道"],
    &["定海路街道", "平凉路街道", "江浦路街道", "四平路街道", "控江路街道", "长白新村街道", "延吉新村街道", "殷行街道", "大桥街道", "五角场街道", "新江湾城街道", "长海路街道"],
    &["江川路街道", "古美街道", "新虹街道", "浦锦街道", "莘庄镇", "七宝镇", "颛桥镇", "华漕镇", "虹桥镇", "梅陇镇", "吴泾镇", "马桥镇", "浦江镇"],
    &["友谊路街道", "吴淞街道", "张庙街道", "罗店镇", "大场镇", "杨行镇", "月浦镇", "罗泾镇", "顾村镇", "高境镇", "庙行镇", "淞南镇"],
    &["新成路街道", "真新街道", "嘉定镇街道", "南翔镇", "安亭镇", "马陆镇", "徐行镇", "华亭镇", "外冈镇", "江桥镇"],
    &["潍坊新村街道", "陆家嘴街道", "周家渡街道", "塘桥街道", "上钢新村街道", "南码头路街道", "沪东新村街道", "金杨新村街道", "洋泾街道", "浦兴路街道", "东明路街道", "花木街道", "川沙新镇", "高桥镇", "北蔡镇", "合庆镇", "唐镇", "曹路镇", "金桥镇", "高行镇", "高东镇", "张江镇", "三林镇", "惠南镇", "周浦镇", "新场镇", "大团镇", "康桥镇", "航头镇", "祝桥镇", "泥城镇", "宣桥镇", "书院镇", "万祥镇", "老港镇"],
    &["石化街道", "朱泾镇", "枫泾镇", "张堰镇", "亭林镇", "吕巷镇", "廊下镇", "金山卫镇", "漕泾镇", "山阳镇"],
    &["岳阳街道", "永丰街道", "方松街道", "中山街道", "广富林街道", "九里亭街道", "泗泾镇", "佘山镇", "车墩镇", "新桥镇", "洞泾镇", "九亭镇", "泖港镇", "石湖荡镇", "新浜镇", "叶榭镇", "小昆山镇"],
    &["夏阳街道", "盈浦街道", "香花桥街道", "朱家角镇", "练塘镇", "金泽镇", "赵巷镇", "徐泾镇", "华新镇", "重固镇", "白鹤镇"],
    &["西渡街道", "奉浦街道", "金海街道", "南桥镇", "奉城镇", "庄行镇", "金汇镇", "四团镇", "青村镇", "柘林镇", "海湾镇"],
    &["城桥镇", "堡镇", "新河镇", "庙镇", "竖新镇", "向化镇", "三星镇", "港沿镇", "中兴镇", "陈家镇", "绿华镇", "港西镇", "建设镇", "新海镇", "东平镇", "长兴镇", "新村乡", "横沙乡"],
];

/// Half-width and half-height (degrees) of a rough box around each district's centroid.
#[rustfmt::skip]
const DISTRICT_HALF_EXTENT: [(f64, f64); 16] = [
    (0.025, 0.02),
    (0.035, 0.04),
    (0.045, 0.02),
    (0.03, 0.04),
    (0.04, 0.03),
    (0.02, 0.03),
    (0.04, 0.03),
    (0.1, 0.08),
    (0.1, 0.07),
    (0.1, 0.08),
    (0.2, 0.2),
    (0.12, 0.08),
    (0.12, 0.1),
    (0.15, 0.1),
    (0.15, 0.06),
    (0.3, 0.06),
];

#[rustfmt::skip]
const ROADS: &[&str] = &[
    "世纪大道", "张杨路", "科苑路", "碧波路", "祖冲之路", "浦东南路", "杨高中路", "川沙路",
    "南京东路", "南京西路", "淮海中路", "延安西路", "四川北路", "武宁路", "长寿路", "曹杨路",
    "中山北路", "漕溪北路", "虹桥路", "天山路", "仙霞路", "古北路", "莲花路", "沪闵路",
    "七莘路", "都市路", "牡丹江路", "友谊路", "共和新路", "场中路", "曹安公路", "博乐路",
    "人民北路", "中山东路", "城中路", "公园路", "新松江路", "沪松公路", "南桥路", "八一路",
];

/// Trade names (字号).
#[rustfmt::skip]
const TRADE_NAMES: &[&str] = &[
    "华信", "东方", "金桥", "恒通", "联创", "锦程", "宏达", "新亚", "瑞丰", "嘉禾", "智远",
    "天成", "盛世", "海纳", "云帆", "鼎盛", "佳宇", "润泽", "启明", "星辰", "申通", "沪联",
    "浦江", "申华", "复兴", "长江", "明珠", "永安", "大通", "协和", "立信", "光明", "九州",
    "安信", "中环", "汇丰源", "同德", "万象", "君和", "易达",
];

#[rustfmt::skip]
const INDUSTRIES: &[&str] = &[
    "科技", "信息技术", "贸易", "实业", "餐饮管理", "建筑工程", "物流", "文化传媒", "电子商务",
    "企业管理咨询", "生物科技", "投资管理", "环保科技", "房地产开发", "物业管理", "教育科技",
    "医疗器械", "服饰", "汽车服务", "广告",
];

#[rustfmt::skip]
const SHOPS: &[&str] = &[
    "小吃店", "便利店", "理发店", "五金店", "水果店", "面馆", "服装店", "维修部", "烟杂店",
    "餐饮店",
];

#[rustfmt::skip]
const COOPERATIVES: &[&str] = &["蔬果", "水稻", "西甜瓜", "花卉", "水产养殖", "家禽养殖", "农机"];

#[rustfmt::skip]
const EATERIES: &[&str] = &["餐厅", "面馆", "小笼馆", "本帮菜馆", "火锅", "咖啡馆", "茶餐厅"];
#[rustfmt::skip]
const CONVENIENCE_CHAINS: &[&str] = &["全家", "罗森", "好德", "快客", "7-Eleven", "喜士多"];
#[rustfmt::skip]
const SUPERMARKETS: &[&str] = &["联华超市", "盒马鲜生", "大润发", "家乐福", "世纪联华", "永辉超市"];
#[rustfmt::skip]
const PHARMACIES: &[&str] = &["雷允上", "第一医药", "华氏大药房", "国大药房"];
#[rustfmt::skip]
const SCHOOLS: &[&str] = &["小学", "中学", "实验学校", "幼儿园", "第一小学", "第二中学"];
#[rustfmt::skip]
const HOSPITALS: &[&str] = &["中心医院", "人民医院", "中医医院", "妇幼保健院", "精神卫生中心"];
#[rustfmt::skip]
const PARKS: &[&str] = &["公园", "绿地", "口袋公园", "滨水绿地"];
#[rustfmt::skip]
const MALLS: &[&str] = &["广场", "购物中心", "百货", "天地", "生活广场"];
#[rustfmt::skip]
const BANKS: &[&str] = &[
    "工商银行", "建设银行", "农业银行", "中国银行", "交通银行", "上海银行", "招商银行", "浦发银行",
];
#[rustfmt::skip]
const DISTRICT_OFFICES: &[&str] = &[
    "市场监督管理局", "税务局", "人力资源和社会保障局", "规划和自然资源局", "公安分局", "民政局",
];
#[rustfmt::skip]
const HOTELS: &[&str] = &["大酒店", "宾馆", "酒店", "精品酒店"];
#[rustfmt::skip]
const FUEL_BRANDS: &[&str] = &["中国石化", "中国石油", "壳牌"];

#[rustfmt::skip]
const POI_CATEGORIES: &[(&str, u64)] = &[
    ("餐饮", 300),
    ("便利店", 110),
    ("超市", 70),
    ("药店", 50),
    ("学校", 60),
    ("医院", 30),
    ("公园", 40),
    ("地铁站", 30),
    ("商场", 50),
    ("银行", 80),
    ("政府机构", 30),
    ("酒店", 60),
    ("加油站", 20),
    ("健身房", 40),
];

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Date32Type, Decimal128Type, Float64Type};
    use datafusion::parquet::arrow::arrow_reader::{
        ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    };
    use datafusion::parquet::file::metadata::PageIndexPolicy;
    use std::collections::{BTreeMap, HashSet};

    /// A fresh directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "bund-example-data-{label}-{}-{n}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&path);
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Small chunks, so a tiny data set still crosses batch, row group and file boundaries.
    const SMALL: Layout = Layout {
        batch_rows: 300,
        part_rows: 700,
        row_group_rows: 128,
    };

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    fn read_parquet(out: &Path, table: Table) -> Vec<RecordBatch> {
        if table.format() == Format::Sqlite {
            return vec![read_sqlite(out, table)];
        }
        let mut batches = Vec::new();
        for path in files(&out.join(table.dir())) {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                assert_eq!(batch.schema(), table.schema(), "{}", path.display());
                batches.push(batch);
            }
        }
        batches
    }

    /// A SQLite table as one batch of the table's schema (text and DATE columns only).
    fn read_sqlite(out: &Path, table: Table) -> RecordBatch {
        let files = files(&out.join(table.dir()));
        assert_eq!(files.len(), 1, "{files:?}");
        let conn = rusqlite::Connection::open_with_flags(
            &files[0],
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let schema = table.schema();
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{}\"", table.sql_name()))
            .unwrap();
        let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); schema.fields().len()];
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, c) in columns.iter_mut().enumerate() {
                c.push(row.get::<_, Option<String>>(i).unwrap());
            }
        }
        let arrays: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .zip(columns)
            .map(|(f, values)| -> ArrayRef {
                match f.data_type() {
                    DataType::Utf8 => Arc::new(datafusion::arrow::array::StringArray::from(values)),
                    DataType::Date32 => Arc::new(datafusion::arrow::array::Date32Array::from(
                        values
                            .iter()
                            .map(|v| {
                                v.as_ref().map(|d| {
                                    let (y, m, day) = (&d[0..4], &d[5..7], &d[8..10]);
                                    days_from_civil(
                                        y.parse().unwrap(),
                                        m.parse().unwrap(),
                                        day.parse().unwrap(),
                                    )
                                })
                            })
                            .collect::<Vec<_>>(),
                    )),
                    other => panic!("read_sqlite: {other}"),
                }
            })
            .collect();
        RecordBatch::try_new(schema, arrays).unwrap()
    }

    fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
        batches
            .iter()
            .flat_map(|b| {
                let a = b.column_by_name(column).unwrap().as_string::<i32>().clone();
                (0..a.len())
                    .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn required(batches: &[RecordBatch], column: &str) -> Vec<String> {
        strings(batches, column)
            .into_iter()
            .map(|v| v.unwrap_or_else(|| panic!("NULL in {column}")))
            .collect()
    }

    fn dates(batches: &[RecordBatch], column: &str) -> Vec<Option<i32>> {
        batches
            .iter()
            .flat_map(|b| {
                let a = b
                    .column_by_name(column)
                    .unwrap()
                    .as_primitive::<Date32Type>()
                    .clone();
                (0..a.len())
                    .map(|i| a.is_valid(i).then(|| a.value(i)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn floats(batches: &[RecordBatch], column: &str) -> Vec<f64> {
        batches
            .iter()
            .flat_map(|b| {
                let a = b
                    .column_by_name(column)
                    .unwrap()
                    .as_primitive::<Float64Type>();
                a.values().to_vec()
            })
            .collect()
    }

    fn decimals(batches: &[RecordBatch], column: &str) -> Vec<i128> {
        batches
            .iter()
            .flat_map(|b| {
                let a = b
                    .column_by_name(column)
                    .unwrap()
                    .as_primitive::<Decimal128Type>();
                a.values().to_vec()
            })
            .collect()
    }

    /// (header, rows) of all CSV parts; contributions have no quoted fields.
    fn read_csv(out: &Path, table: Table) -> (String, Vec<Vec<String>>) {
        let mut header = None;
        let mut rows = Vec::new();
        for path in files(&out.join(table.dir())) {
            let text = fs::read_to_string(&path).unwrap();
            let mut lines = text.lines();
            let h = lines.next().unwrap().to_owned();
            assert_eq!(header.get_or_insert_with(|| h.clone()), &h);
            rows.extend(lines.map(|l| l.split(',').map(str::to_owned).collect()));
        }
        (header.unwrap(), rows)
    }

    fn cents(text: &str) -> i128 {
        let (yuan, fraction) = text.split_once('.').unwrap();
        assert_eq!(fraction.len(), 2, "{text}");
        yuan.parse::<i128>().unwrap() * 100 + fraction.parse::<i128>().unwrap()
    }

    fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let bytes = fs::read(&path).unwrap();
                    out.insert(path.strip_prefix(dir).unwrap().to_owned(), bytes);
                }
            }
        }
        out
    }

    const TODAY: i32 = days_from_civil(2025, 6, 30);

    #[test]
    fn example_data_tables_are_valid_and_join() {
        let scratch = Scratch::new("valid");
        let opts = ExampleData {
            residents: 2000,
            out: scratch.0.clone(),
        };
        let counts = generate_with(&opts, &SMALL, 2).unwrap();
        let expected = [
            ("police.residents", 2000),
            ("market.enterprises", 100),
            ("hrss.contributions", 2000),
            ("planning.poi", 200),
            ("licence.licences", 200),
        ];
        let counts: Vec<_> = counts.iter().map(|(t, n)| (t.as_str(), *n)).collect();
        assert_eq!(counts, expected);
        let out = &scratch.0;

        // Layout and manifest.
        let manifest: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(out.join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(manifest["generator_version"], GENERATOR_VERSION);
        for (i, (table, rows)) in expected.iter().enumerate() {
            assert_eq!(manifest["tables"][i]["table"], *table);
            assert_eq!(manifest["tables"][i]["rows"], *rows);
        }
        let leftovers: Vec<_> = fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert_eq!(files(&out.join("police/residents")).len(), 3);
        assert!(out.join("police/residents/part-00002.parquet").is_file());
        assert!(out.join("hrss/contributions/part-00000.csv").is_file());

        // Every row group has a bloom filter of the lookup columns, and only of them.
        for table in [Table::Residents, Table::Enterprises] {
            for file in files(&out.join(table.dir())) {
                let reader =
                    ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&file).unwrap())
                        .unwrap();
                for group in reader.metadata().row_groups() {
                    for column in group.columns() {
                        let name = column.column_path().string();
                        assert_eq!(
                            column.bloom_filter_offset().is_some(),
                            table.lookup_columns().contains(&name.as_str()),
                            "{name} in {}",
                            file.display()
                        );
                    }
                }
            }
        }

        // Each row group of a table with lookup columns is sorted by the first, and the page
        // index (each page's range of it) is written.
        for table in [Table::Residents, Table::Enterprises] {
            let column = table.clustered_by().unwrap();
            for file in files(&out.join(table.dir())) {
                let open = || {
                    let options =
                        ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
                    ParquetRecordBatchReaderBuilder::try_new_with_options(
                        fs::File::open(&file).unwrap(),
                        options,
                    )
                    .unwrap()
                };
                let groups = open().metadata().num_row_groups();
                assert!(
                    open().metadata().offset_index().is_some(),
                    "{}",
                    file.display()
                );
                if table == Table::Residents {
                    assert!(groups > 1, "{}", file.display());
                }
                for group in 0..groups {
                    let batches: Vec<RecordBatch> = open()
                        .with_row_groups(vec![group])
                        .build()
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    let keys = required(&batches, column);
                    assert!(keys.is_sorted(), "{column} in {} #{group}", file.display());
                }
            }
        }

        // police.residents
        let residents = read_parquet(out, Table::Residents);
        let ids = required(&residents, "id_card");
        assert_eq!(ids.len(), 2000);
        let id_set: HashSet<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(id_set.len(), ids.len(), "resident IDs are unique");
        let sexes = required(&residents, "sex");
        let births = dates(&residents, "birth_date");
        for (i, id) in ids.iter().enumerate() {
            assert!(id_card::is_valid(id, TODAY), "{id}");
            assert!(district::get(&id[..6]).is_some_and(|d| d.current), "{id}");
            let (y, m, d) = id_card::birth(id).unwrap();
            assert_eq!(births[i], Some(days_from_civil(y, m, d)), "{id}");
            assert!((1925..=2024).contains(&y), "{id}");
            assert_eq!(sexes[i], id_card::sex(id).unwrap().to_string(), "{id}");
        }
        // the generator's residents, each row group in ID order
        let generated: HashSet<String> = (0..2000).map(|i| resident_id_card(i, 2000)).collect();
        assert_eq!(id_set, generated.iter().map(String::as_str).collect());
        let names = required(&residents, "name");
        assert!(
            names.iter().all(|n| (2..=4).contains(&n.chars().count())),
            "{names:?}"
        );
        assert!(names.iter().collect::<HashSet<_>>().len() > 500);
        let phones = strings(&residents, "phone");
        let nulls = phones.iter().filter(|p| p.is_none()).count();
        assert!((10..=80).contains(&nulls), "{nulls} NULL phones");
        for phone in phones.iter().flatten() {
            assert!(
                phone.len() == 11 && phone.bytes().all(|b| b.is_ascii_digit()),
                "{phone}"
            );
            assert!(MOBILE_PREFIXES.contains(&&phone[..3]), "{phone}");
        }
        let districts = required(&residents, "district_code");
        let addresses = required(&residents, "address");
        let households = required(&residents, "household_id");
        for ((d, a), h) in districts.iter().zip(&addresses).zip(&households) {
            let name = district::name_zh(d).unwrap();
            assert!(a.starts_with(&format!("上海市{name}")), "{a}");
            assert!(a.ends_with('室'), "{a}");
            assert!(h.len() == 15 && h.starts_with(&format!("H{d}")), "{h}");
        }
        let household_count = households.iter().collect::<HashSet<_>>().len();
        assert_eq!(household_count, 800, "2.5 residents per household");
        // Pudong (22.8 % of the census) is the most common residence.
        let pudong = districts.iter().filter(|d| *d == "310115").count();
        assert!((300..=650).contains(&pudong), "{pudong}");

        // market.enterprises
        let enterprises = read_parquet(out, Table::Enterprises);
        let codes = required(&enterprises, "uscc");
        let code_set: HashSet<&str> = codes.iter().map(String::as_str).collect();
        assert_eq!(code_set.len(), 100, "USCCs are unique");
        let ent_districts = required(&enterprises, "district_code");
        for (code, d) in codes.iter().zip(&ent_districts) {
            assert!(uscc::is_valid(code, true), "{code}");
            assert!(code.starts_with("91") || code.starts_with("92") || code.starts_with("93"));
            assert_eq!(uscc::region(code), Some(d.as_str()));
        }
        for rep in required(&enterprises, "legal_rep_id_card") {
            assert!(
                id_set.contains(rep.as_str()),
                "legal rep {rep} is a resident"
            );
        }
        let founded = dates(&enterprises, "founded_on");
        let first = days_from_civil(1990, 1, 1);
        assert!(
            founded
                .iter()
                .all(|d| d.is_some_and(|d| (first..=LAST_DAY).contains(&d)))
        );
        assert!(
            decimals(&enterprises, "registered_capital")
                .iter()
                .all(|&c| c > 0)
        );
        let statuses: HashSet<String> = required(&enterprises, "status").into_iter().collect();
        assert!(statuses.contains("存续"));
        assert!(
            statuses
                .iter()
                .all(|s| ["存续", "在业", "吊销", "注销", "迁出"].contains(&s.as_str()))
        );

        // hrss.contributions
        let (header, rows) = read_csv(out, Table::Contributions);
        assert_eq!(header, "id_card,employer_uscc,month,base,amount");
        assert_eq!(rows.len(), 2000);
        let mut person_months = HashSet::new();
        for row in &rows {
            let [id, employer, month, base, amount] = row.as_slice() else {
                panic!("{row:?}");
            };
            assert!(
                id_set.contains(id.as_str()),
                "contributor {id} is a resident"
            );
            let (y, _, _) = id_card::birth(id).unwrap();
            assert!((1964..=2006).contains(&y), "{id} is of working age");
            assert!(
                code_set.contains(employer.as_str()),
                "employer {employer} exists"
            );
            assert!(MONTHS.contains(&month.as_str()), "{month}");
            let base = cents(base);
            assert!((731_000..=3_654_900).contains(&base), "{base}");
            assert_eq!(cents(amount), employee_share_cents(base));
            assert!(
                person_months.insert((id.clone(), month.clone())),
                "{id} {month} twice"
            );
        }

        // planning.poi
        let poi = read_parquet(out, Table::Poi);
        let poi_ids = required(&poi, "poi_id");
        assert_eq!(poi_ids.iter().collect::<HashSet<_>>().len(), 200);
        assert!(
            poi_ids
                .iter()
                .all(|p| p.len() == 13 && p.starts_with("POI"))
        );
        let (lon, lat) = (floats(&poi, "lon_wgs84"), floats(&poi, "lat_wgs84"));
        let (g_lon, g_lat) = (floats(&poi, "lon_gcj02"), floats(&poi, "lat_gcj02"));
        for (((&lon, &lat), &g_lon), &g_lat) in lon.iter().zip(&lat).zip(&g_lon).zip(&g_lat) {
            assert!((120.8..=122.2).contains(&lon) && (30.6..=31.9).contains(&lat));
            assert_eq!(coords::wgs84_to_gcj02(lon, lat), (g_lon, g_lat));
        }
        assert!(required(&poi, "name").iter().all(|n| !n.is_empty()));

        // licence.licences
        let licences = read_parquet(out, Table::Licences);
        let licence_ids = required(&licences, "licence_id");
        assert_eq!(licence_ids.iter().collect::<HashSet<_>>().len(), 200);
        let types = required(&licences, "licence_type");
        let holders = required(&licences, "holder_id");
        let issued = dates(&licences, "issued_on");
        let expires = dates(&licences, "expires_on");
        let rows = types
            .iter()
            .zip(&licence_ids)
            .zip(&holders)
            .zip(&issued)
            .zip(&expires);
        for ((((kind, id), holder), issued), expires) in rows {
            let t = LICENCE_TYPES.iter().find(|t| t.name == kind).unwrap();
            assert!(id.starts_with(&format!("SH{}", t.code)), "{id}");
            match t.holder {
                Holder::Person => assert!(id_set.contains(holder.as_str()), "{holder}"),
                Holder::Business => assert!(code_set.contains(holder.as_str()), "{holder}"),
            }
            let issued = issued.unwrap();
            assert!(issued <= LAST_DAY);
            assert!(expires.is_none_or(|e| e > issued));
        }
        assert!(expires.iter().any(Option::is_none) && expires.iter().any(Option::is_some));
    }

    #[test]
    fn example_data_is_deterministic_across_threads_and_reruns() {
        let (a, b) = (Scratch::new("det-a"), Scratch::new("det-b"));
        generate_with(
            &ExampleData {
                residents: 2000,
                out: a.0.clone(),
            },
            &SMALL,
            1,
        )
        .unwrap();
        generate_with(
            &ExampleData {
                residents: 2000,
                out: b.0.clone(),
            },
            &SMALL,
            3,
        )
        .unwrap();
        let (ta, tb) = (tree(&a.0), tree(&b.0));
        assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
        for (path, bytes) in &ta {
            assert!(bytes == &tb[path], "{} differs", path.display());
        }
        // A rerun into the same directory replaces the data set.
        generate_with(
            &ExampleData {
                residents: 2000,
                out: a.0.clone(),
            },
            &SMALL,
            2,
        )
        .unwrap();
        assert_eq!(tree(&a.0), tb);
    }

    #[test]
    fn rows_do_not_depend_on_chunking() {
        let (a, b) = (Scratch::new("chunk-a"), Scratch::new("chunk-b"));
        generate_with(
            &ExampleData {
                residents: 1500,
                out: a.0.clone(),
            },
            &SMALL,
            2,
        )
        .unwrap();
        generate_with(
            &ExampleData {
                residents: 1500,
                out: b.0.clone(),
            },
            &Layout::DEFAULT,
            2,
        )
        .unwrap();
        for table in [
            Table::Residents,
            Table::Enterprises,
            Table::Poi,
            Table::Licences,
        ] {
            let (ra, rb) = (read_parquet(&a.0, table), read_parquet(&b.0, table));
            let schema = table.schema();
            let ra = datafusion::arrow::compute::concat_batches(&schema, &ra).unwrap();
            let rb = datafusion::arrow::compute::concat_batches(&schema, &rb).unwrap();
            // the same rows; a table sorted within its row groups has them in another order
            let (ra, rb) = match table.clustered_by() {
                None => (ra, rb),
                Some(column) => {
                    let by_key = |batch: RecordBatch| {
                        let key = batch.column_by_name(column).unwrap();
                        let order = sort_to_indices(key, None, None).unwrap();
                        take_record_batch(&batch, &order).unwrap()
                    };
                    (by_key(ra), by_key(rb))
                }
            };
            assert_eq!(ra, rb, "{}", table.qualified_name());
        }
        assert_eq!(
            read_csv(&a.0, Table::Contributions),
            read_csv(&b.0, Table::Contributions)
        );
    }

    #[test]
    fn contributors_are_distinct_working_age_people() {
        // 25,000 contributors: about 30 blocks have nobody of working age and borrow.
        let world = World::new(300_000).unwrap();
        let mut seen = HashSet::new();
        for c in 0..world.residents.div_ceil(12) {
            let who = contributor(&world, c);
            assert!(is_working_age(&who.person), "{}", who.person.id());
            assert!(seen.insert(who.person.id_card), "{} twice", who.person.id());
        }
    }

    #[test]
    fn permutation_is_a_bijection() {
        for n in [1, 2, 3, 7, 64, 1000, 4097] {
            let perm = Perm::new(n, 42);
            let seen: HashSet<u64> = (0..n).map(|i| perm.apply(i)).collect();
            assert_eq!(seen.len() as u64, n);
            assert!(seen.iter().all(|&x| x < n));
        }
    }

    #[test]
    fn households_hold_ten_residents_per_four() {
        let households: Vec<u64> = (0..10_000).map(household_of).collect();
        assert!(
            households
                .windows(2)
                .all(|w| w[1] == w[0] || w[1] == w[0] + 1)
        );
        assert_eq!(households.last(), Some(&3_999));
    }

    #[test]
    fn word_tables_fit_the_district_table() {
        assert_eq!(TOWNS.len(), district::CURRENT.len());
        assert_eq!(DISTRICT_HALF_EXTENT.len(), district::CURRENT.len());
        assert!(district::CURRENT.iter().all(|d| d.centroid_wgs84.is_some()));
        assert_eq!(district_short("浦东新区"), "浦东");
        assert_eq!(district_short("黄浦区"), "黄浦");
        assert_eq!(town_short("川沙新镇"), "川沙");
        assert_eq!(town_short("嘉定镇街道"), "嘉定");
        assert_eq!(employee_share_cents(731_100), 76_766); // 7,311 × 0.105 = 767.655
        assert_eq!(employee_share_cents(731_000), 76_755);
        assert_eq!(
            add_years(days_from_civil(2024, 2, 29), 1),
            days_from_civil(2025, 2, 28)
        );
    }

    #[test]
    fn too_many_or_no_residents_are_refused() {
        assert!(World::new(0).is_err());
        assert!(World::new(MAX_RESIDENTS + 1).is_err());
        assert!(World::new(MAX_RESIDENTS).is_ok());
    }
}
