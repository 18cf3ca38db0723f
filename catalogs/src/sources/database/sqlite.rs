//! SQLite sources: a database file opened read-only (never created, never written), its
//! tables' columns read from their declared types, and scans that step through the rows on
//! a blocking thread, appending each value to the column's Arrow builder and handing over a
//! batch every `batch_size` rows.
//!
//! SQLite's columns are dynamically typed: a value is converted to the column's Arrow type
//! where the conversion is exact (an integer in a REAL column, a numeric text in a DECIMAL
//! column), and refused with the column's name otherwise.

use datafusion::arrow::record_batch::RecordBatch;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc::Sender;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::copy::{Builder, DecodeResult, RowBatches, parse_decimal};
use async_trait::async_trait;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;

use super::{
    Database, DatabaseSettings, Dialect, RemoteColumn, RemoteSource, Scan, SourceError,
    SourceErrorKind,
};
use bund_udfs::domain::{days_from_civil, is_real_date};

/// A SQLite database file.
pub(crate) struct SqliteDatabase {
    pub(crate) settings: DatabaseSettings,
    pub(crate) path: PathBuf,
}

impl fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteDatabase")
            .field("name", &self.settings.name)
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteDatabase {
    /// The settings' `url` is the file's path, checked to exist.
    pub(crate) fn new(settings: DatabaseSettings) -> Self {
        let path = PathBuf::from(&settings.url);
        Self { settings, path }
    }

    fn sqlite_error(&self, e: &rusqlite::Error) -> SourceError {
        let kind = match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::DatabaseBusy)
            | Some(rusqlite::ErrorCode::DatabaseLocked) => SourceErrorKind::Unavailable,
            Some(rusqlite::ErrorCode::OperationInterrupted) => SourceErrorKind::Timeout,
            _ => SourceErrorKind::Remote,
        };
        self.settings.error(kind, e.to_string())
    }

    /// A read-only connection; waits up to the connect timeout for a writer's lock.
    pub(crate) fn open(&self) -> Result<Connection, SourceError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            self.settings.error(
                SourceErrorKind::Unavailable,
                format!("cannot open {}: {e}", self.path.display()),
            )
        })?;
        conn.busy_timeout(self.settings.connect_timeout)
            .map_err(|e| self.sqlite_error(&e))?;
        Ok(conn)
    }

    fn describe_blocking(
        &self,
        source: &RemoteSource,
    ) -> Result<Vec<(Field, RemoteColumn)>, SourceError> {
        let conn = self.open()?;
        // NOT NULL columns of a table (a query's columns are all nullable).
        let mut not_null = std::collections::HashSet::new();
        if let RemoteSource::Table(parts) = source {
            let (schema, table) = match parts.as_slice() {
                [schema, table] => (schema.as_str(), table.as_str()),
                [table] => ("main", table.as_str()),
                _ => ("main", ""),
            };
            let mut info = conn
                .prepare("SELECT name FROM pragma_table_info(?1, ?2) WHERE \"notnull\"")
                .map_err(|e| self.sqlite_error(&e))?;
            let names = info
                .query_map([table, schema], |r| r.get::<_, String>(0))
                .map_err(|e| self.sqlite_error(&e))?;
            for n in names {
                not_null.insert(n.map_err(|e| self.sqlite_error(&e))?);
            }
        }
        let sql = format!(
            "SELECT * FROM {} LIMIT 0",
            source.sql_from_item(&SqliteDialect)
        );
        let stmt = conn.prepare(&sql).map_err(|e| self.sqlite_error(&e))?;
        let mut out = Vec::new();
        for (i, c) in stmt.columns().enumerate() {
            let decl = c.decl_type().unwrap_or("");
            let (dt, as_text) =
                self.settings
                    .column_type(c.name(), &format!("`{decl}`"), arrow_type(decl))?;
            // The collation of the column the value comes from (`COLLATE NOCASE` in its
            // declaration, say); a computed column has none that SQLite reports.
            let collation = stmt
                .column_metadata(i)
                .ok()
                .flatten()
                .and_then(|m| m.4)
                .map(|c| c.to_string_lossy().to_ascii_uppercase());
            out.push((
                Field::new(c.name(), dt, !not_null.contains(c.name())),
                RemoteColumn {
                    name: c.name().to_string(),
                    as_text,
                    text_fn: None,
                    exact_text: collation.as_deref() == Some("BINARY"),
                },
            ));
        }
        if out.is_empty() {
            return Err(self
                .settings
                .error(SourceErrorKind::Remote, "the table has no columns"));
        }
        Ok(out)
    }
}

/// The Arrow type of a declared SQLite column type (SQLite's affinity rules, refined).
fn arrow_type(decl: &str) -> Option<DataType> {
    let t = decl.trim().to_ascii_uppercase();
    let base = t.split('(').next().unwrap_or_default().trim();
    if let Some(args) = t
        .strip_prefix("DECIMAL(")
        .or_else(|| t.strip_prefix("NUMERIC("))
        .and_then(|r| r.strip_suffix(')'))
    {
        let mut it = args.split(',').map(str::trim);
        let p: u8 = it.next()?.parse().ok()?;
        let s: i8 = it.next().map_or(Some(0), |s| s.parse().ok())?;
        return ((1..=38).contains(&p) && s >= 0 && (s as u8) <= p)
            .then_some(DataType::Decimal128(p, s));
    }
    Some(match base {
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "DATE" => DataType::Date32,
        "DATETIME" | "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, None),
        _ if base.contains("INT") => DataType::Int64,
        _ if base.contains("CHAR") || base.contains("CLOB") || base.contains("TEXT") => {
            DataType::Utf8
        }
        "BLOB" => DataType::Binary,
        _ if base.contains("REAL") || base.contains("FLOA") || base.contains("DOUB") => {
            DataType::Float64
        }
        _ => return None,
    })
}

/// `YYYY-MM-DD` → days since the epoch; dates that do not exist are refused.
fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i32 = s[0..4].parse().ok()?;
    let m: u32 = s[5..7].parse().ok()?;
    let d: u32 = s[8..10].parse().ok()?;
    ((1..=12).contains(&m) && is_real_date(y, m, d)).then(|| days_from_civil(y, m, d))
}

/// `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]]` → microseconds since the epoch.
fn parse_timestamp(s: &str) -> Option<i64> {
    let days = i64::from(parse_date(s.get(..10)?)?);
    let rest = s.get(10..)?;
    if rest.is_empty() {
        return Some(days * 86_400_000_000);
    }
    let rest = rest.strip_prefix([' ', 'T'])?;
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let mut it = hms.split(':');
    let h: i64 = it.next()?.parse().ok()?;
    let mi: i64 = it.next()?.parse().ok()?;
    let sec: i64 = it.next().map_or(Some(0), |x| x.parse().ok())?;
    if it.next().is_some() || h > 23 || mi > 59 || sec > 60 || frac.len() > 6 {
        return None;
    }
    let micros: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().ok()? * 10_i64.pow(6 - frac.len() as u32)
    };
    Some(((days * 24 + h) * 60 + mi) * 60_000_000 + sec * 1_000_000 + micros)
}

impl Builder {
    /// Appends one SQLite value, converted exactly to the column's type.
    pub(crate) fn append_sqlite(&mut self, v: ValueRef<'_>) -> DecodeResult<()> {
        let bad = |what: &str| Err(format!("{} value is not {what}", kind(&v)));
        if let ValueRef::Null = v {
            self.append_null();
            return Ok(());
        }
        match self {
            Self::Int64(b) => match v {
                ValueRef::Integer(i) => b.append_value(i),
                ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
                    b.append_value(f as i64);
                }
                _ => match as_text(&v).and_then(|s| s.trim().parse().ok()) {
                    Some(i) => b.append_value(i),
                    None => return bad("an integer"),
                },
            },
            Self::Int32(b) => match v {
                ValueRef::Integer(i) => {
                    b.append_value(i32::try_from(i).map_err(|_| format!("{i} does not fit int"))?)
                }
                _ => return bad("an integer"),
            },
            Self::Int16(b) => match v {
                ValueRef::Integer(i) => b.append_value(
                    i16::try_from(i).map_err(|_| format!("{i} does not fit smallint"))?,
                ),
                _ => return bad("an integer"),
            },
            Self::Float32(b) => match v {
                ValueRef::Integer(i) => b.append_value(i as f32),
                ValueRef::Real(f) => b.append_value(f as f32),
                _ => return bad("a number"),
            },
            Self::Float64(b) => match v {
                ValueRef::Integer(i) => b.append_value(i as f64),
                ValueRef::Real(f) => b.append_value(f),
                _ => match as_text(&v).and_then(|s| s.trim().parse().ok()) {
                    Some(f) => b.append_value(f),
                    None => return bad("a number"),
                },
            },
            Self::Boolean(b) => match v {
                ValueRef::Integer(0) => b.append_value(false),
                ValueRef::Integer(1) => b.append_value(true),
                _ => return bad("0 or 1"),
            },
            Self::Decimal128(b, scale) => {
                let x = match v {
                    ValueRef::Integer(i) => i128::from(i).checked_mul(10_i128.pow(*scale as u32)),
                    ValueRef::Real(f) => {
                        parse_decimal(&format!("{f}"), *scale).and_then(|x| x.to_i128())
                    }
                    _ => as_text(&v)
                        .and_then(|s| parse_decimal(s, *scale))
                        .and_then(|x| x.to_i128()),
                };
                match x {
                    Some(x) => b.append_value(x),
                    None => return bad("a decimal of this scale"),
                }
            }
            Self::Utf8(b) => match v {
                ValueRef::Text(t) => {
                    b.append_value(
                        std::str::from_utf8(t).map_err(|e| format!("text is not UTF-8: {e}"))?,
                    );
                }
                ValueRef::Integer(i) => b.append_value(i.to_string()),
                ValueRef::Real(f) => b.append_value(f.to_string()),
                _ => return bad("text"),
            },
            Self::Binary(b) => match v {
                ValueRef::Blob(x) | ValueRef::Text(x) => b.append_value(x),
                _ => return bad("a blob"),
            },
            Self::Date32(b) => match as_text(&v).and_then(parse_date) {
                Some(d) => b.append_value(d),
                None => return bad("a YYYY-MM-DD date"),
            },
            Self::Timestamp(b) => match as_text(&v).and_then(parse_timestamp) {
                Some(t) => b.append_value(t),
                None => return bad("a YYYY-MM-DD HH:MM:SS timestamp"),
            },
            _ => return Err("this column type is not read from SQLite".into()),
        }
        Ok(())
    }
}

fn as_text<'a>(v: &ValueRef<'a>) -> Option<&'a str> {
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    }
}

fn kind(v: &ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "a NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real",
        ValueRef::Text(_) => "a text",
        ValueRef::Blob(_) => "a blob",
    }
}

#[async_trait]
impl Database for SqliteDatabase {
    fn settings(&self) -> &DatabaseSettings {
        &self.settings
    }

    fn dialect(&self) -> &'static dyn Dialect {
        &SqliteDialect
    }

    fn scan_name(&self) -> &'static str {
        "SqliteScanExec"
    }

    /// Columns of a table or query as Arrow fields, from their declared SQLite types.
    async fn describe(
        &self,
        source: &RemoteSource,
    ) -> Result<Vec<(Field, RemoteColumn)>, SourceError> {
        // The blocking thread gets its own copy of the settings and the path.
        let this = Self::new(self.settings.clone());
        let source = source.clone();
        tokio::task::spawn_blocking(move || this.describe_blocking(&source))
            .await
            .map_err(|e| {
                self.settings
                    .error(SourceErrorKind::Unavailable, e.to_string())
            })?
    }

    fn read(self: Arc<Self>, scan: Scan, builder: &mut RecordBatchReceiverStreamBuilder) {
        let tx = builder.tx();
        builder.spawn_blocking(move || read(&self, scan, tx));
    }
}

/// Steps through one SELECT on the calling (blocking) thread, sending batches of
/// `batch_size` rows to `tx`; stops early when the receiver is gone.
fn read(db: &SqliteDatabase, scan: Scan, tx: Sender<Result<RecordBatch>>) -> Result<()> {
    let Scan {
        sql,
        schema,
        batch_size,
    } = scan;
    let remote = |m: String| DataFusionError::from(db.settings.error(SourceErrorKind::Remote, m));
    let mut batches = RowBatches::new(&schema, batch_size).map_err(remote)?;
    let conn = db.open()?;
    let mut stmt = conn.prepare(&sql).map_err(|e| db.sqlite_error(&e))?;
    let mut rows = stmt.query([]).map_err(|e| db.sqlite_error(&e))?;
    while let Some(row) = rows.next().map_err(|e| db.sqlite_error(&e))? {
        for i in 0..batches.width() {
            let v = row.get_ref(i).map_err(|e| db.sqlite_error(&e))?;
            batches.append(i, |b| b.append_sqlite(v)).map_err(remote)?;
        }
        if let Some(batch) = batches.end_row().map_err(remote)?
            && tx.blocking_send(Ok(batch)).is_err()
        {
            return Ok(()); // the consumer is gone: the query was cancelled
        }
    }
    if let Some(batch) = batches.finish().map_err(remote)? {
        let _ = tx.blocking_send(Ok(batch));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_timestamps_and_decimals_parse_exactly() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(
            parse_timestamp("2024-02-29 13:14:15.5"),
            Some(19_782 * 86_400_000_000 + ((13 * 60 + 14) * 60 + 15) * 1_000_000 + 500_000)
        );
    }

    #[test]
    fn declared_types_map_by_affinity() {
        assert_eq!(arrow_type("INTEGER"), Some(DataType::Int64));
        assert_eq!(arrow_type("varchar(20)"), Some(DataType::Utf8));
        assert_eq!(
            arrow_type("DECIMAL(12,2)"),
            Some(DataType::Decimal128(12, 2))
        );
        assert_eq!(arrow_type("DATE"), Some(DataType::Date32));
        assert_eq!(arrow_type("double precision"), Some(DataType::Float64));
        assert_eq!(arrow_type(""), None);
        assert_eq!(arrow_type("GEOMETRY"), None);
    }
}

/// SQLite's dialect: it stores what it is given, so only integers, floats, booleans and
/// text compare like Bund's values there; dates and decimals are neither compared, grouped
/// nor summed in it. Its BINARY collation orders bytes, as Bund does.
#[derive(Debug)]
pub(crate) struct SqliteDialect;

impl Dialect for SqliteDialect {
    /// SQLite neither flattens a subquery with LIMIT into its outer query nor pushes the
    /// outer WHERE into it.
    fn fence(&self) -> Option<&'static str> {
        Some(" LIMIT -1")
    }

    fn compares(&self, t: &DataType) -> bool {
        matches!(
            t,
            DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float64
                | DataType::Boolean
                | DataType::Utf8
        )
    }

    fn compares_literal(&self, v: &ScalarValue) -> bool {
        !matches!(v, ScalarValue::Decimal128(..) | ScalarValue::Date32(_))
    }

    fn reads(&self, t: &DataType) -> Result<()> {
        match t {
            DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Boolean
            | DataType::Decimal128(..)
            | DataType::Utf8
            | DataType::Binary
            | DataType::Date32
            | DataType::Timestamp(_, None) => Ok(()),
            other => Err(DataFusionError::Plan(format!(
                "Bund cannot read a SQLite column as {other}"
            ))),
        }
    }

    fn exact_dates(&self) -> bool {
        false
    }

    fn exact_decimals(&self) -> bool {
        false
    }

    fn orders_text_by_bytes(&self) -> bool {
        true
    }
}
