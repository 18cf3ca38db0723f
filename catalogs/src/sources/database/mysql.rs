//! MySQL and MariaDB sources: a small pool of lazily made connections, each set up so that
//! the SQL Bund writes means one thing (`NO_BACKSLASH_ESCAPES`, UTC, the statement timeout
//! in the server's own variable), the schema of a table or query read from the server's
//! result-set metadata, and scans as one prepared statement whose binary-protocol rows are
//! appended to Arrow builders as they arrive.
//!
//! A scan whose consumer goes away (the client cancelled) has its statement killed from a
//! second connection (`KILL QUERY`), so the server stops reading and sending rows.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result};
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Value};
use tokio::sync::mpsc::Sender;

use super::copy::{Builder, DecodeResult, RowBatches, parse_decimal};
use super::pool::{Pool, Pooled};
use async_trait::async_trait;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;

use super::{
    Database, DatabaseSettings, Dialect, RemoteColumn, RemoteSource, Scan, SourceError,
    SourceErrorKind,
};

/// The character set number MySQL gives binary strings (BINARY, VARBINARY, BLOB).
const BINARY_CHARSET: u16 = 63;

/// A MySQL or MariaDB database: settings and idle connections.
pub(crate) struct MysqlDatabase {
    pub(crate) settings: DatabaseSettings,
    opts: Opts,
    pool: Pool<Conn>,
}

impl fmt::Debug for MysqlDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlDatabase")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl MysqlDatabase {
    pub(crate) fn new(settings: DatabaseSettings) -> Result<Self, (&'static str, String)> {
        let opts = Opts::from_url(&settings.url).map_err(|e| {
            (
                "url_env",
                format!(
                    "the connection URL does not parse ({}); write mysql://user:password@host:port/database",
                    redact(&e.to_string())
                ),
            )
        })?;
        // TCP only: the driver would otherwise switch to the server's Unix socket.
        let opts = OptsBuilder::from_opts(opts)
            .prefer_socket(false)
            .tcp_nodelay(true)
            .stmt_cache_size(64)
            .into();
        Ok(Self {
            pool: Pool::new(settings.pool_size),
            settings,
            opts,
        })
    }

    /// Classifies a driver error: connection trouble (refused, lost, access denied), the
    /// server's statement timeout, or a refusal of the statement.
    fn my_error(&self, e: &mysql_async::Error) -> SourceError {
        match e {
            mysql_async::Error::Server(s) => {
                let kind = match s.code {
                    // MariaDB max_statement_time, MySQL max_execution_time
                    1969 | 3024 => SourceErrorKind::Timeout,
                    // too many connections, access denied, unknown database, host blocked,
                    // server shutting down, connection killed
                    1040 | 1044 | 1045 | 1049 | 1129 | 1130 | 1053 | 1927 | 4031 => {
                        SourceErrorKind::Unavailable
                    }
                    _ => SourceErrorKind::Remote,
                };
                let message = if kind == SourceErrorKind::Timeout {
                    format!(
                        "{} (statement timeout {} s)",
                        s.message,
                        self.settings.statement_timeout.as_secs_f64()
                    )
                } else {
                    s.message.clone()
                };
                self.settings.error(kind, message)
            }
            mysql_async::Error::Url(u) => self
                .settings
                .error(SourceErrorKind::Unavailable, redact(&u.to_string())),
            other => self
                .settings
                .error(SourceErrorKind::Unavailable, redact(&other.to_string())),
        }
    }

    /// An idle connection that answers a ping (one made before a server restart does
    /// not, and is dropped), or a new one set up within the connect timeout.
    async fn connection(&self) -> Result<Pooled<'_, Conn>, SourceError> {
        let slot = self.pool.slot().await.ok_or_else(|| {
            self.settings
                .error(SourceErrorKind::Unavailable, "the pool is closed")
        })?;
        while let Some(mut c) = self.pool.idle() {
            let ping = tokio::time::timeout(self.settings.connect_timeout, c.ping()).await;
            if matches!(ping, Ok(Ok(()))) {
                return Ok(self.pool.lend(c, slot));
            }
        }
        let conn = self.connect().await?;
        Ok(self.pool.lend(conn, slot))
    }

    /// A new connection, set up: no backslash escapes (Bund doubles quotes and nothing
    /// else), UTC for TIMESTAMP values, UTF-8 results, the statement timeout.
    async fn connect(&self) -> Result<Conn, SourceError> {
        let timeout = self.settings.connect_timeout;
        let setup = async {
            let mut conn = Conn::new(self.opts.clone()).await?;
            let version: Option<String> = conn.query_first("SELECT @@version").await?;
            let secs = self.settings.statement_timeout.as_secs_f64();
            let limit = if version.is_some_and(|v| v.contains("MariaDB")) {
                format!("max_statement_time = {secs}")
            } else {
                format!("max_execution_time = {}", (secs * 1000.0).ceil() as u64)
            };
            conn.query_drop(format!(
                "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES'), \
                 time_zone = '+00:00', character_set_results = 'utf8mb4', {limit}"
            ))
            .await?;
            Ok::<_, mysql_async::Error>(conn)
        };
        match tokio::time::timeout(timeout, setup).await {
            Err(_) => Err(self.settings.error(
                SourceErrorKind::Unavailable,
                format!("no connection within {} s", timeout.as_secs_f64()),
            )),
            Ok(Err(e)) => {
                let mut err = self.my_error(&e);
                // a statement that fails while connecting is the server's refusal to serve
                err.kind = SourceErrorKind::Unavailable;
                Err(err)
            }
            Ok(Ok(conn)) => Ok(conn),
        }
    }

    /// Stops the statement of connection `id` (the consumer of its rows went away).
    fn kill(self: &Arc<Self>, id: u32) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            match this.connect().await {
                Ok(mut c) => {
                    if let Err(e) = c.query_drop(format!("KILL QUERY {id}")).await {
                        tracing::debug!(source = this.settings.name, error = %e, "KILL QUERY failed");
                    }
                    let _ = c.disconnect().await;
                }
                Err(e) => tracing::debug!(source = this.settings.name, error = %e, "cannot kill"),
            }
        });
    }
}

/// A column as the server describes it.
struct MyColumn {
    name: String,
    column_type: ColumnType,
    flags: ColumnFlags,
    length: u32,
    decimals: u8,
    charset: u16,
}

impl MyColumn {
    fn unsigned(&self) -> bool {
        self.flags.contains(ColumnFlags::UNSIGNED_FLAG)
    }

    /// The Arrow type the column is read as; `None` for types Bund does not map.
    fn arrow_type(&self) -> Option<DataType> {
        use ColumnType::*;
        Some(match self.column_type {
            // BOOL is TINYINT(1); unsigned integers widen so every value fits
            MYSQL_TYPE_TINY if self.length == 1 && !self.unsigned() => DataType::Boolean,
            MYSQL_TYPE_TINY | MYSQL_TYPE_YEAR => DataType::Int16,
            MYSQL_TYPE_SHORT if self.unsigned() => DataType::Int32,
            MYSQL_TYPE_SHORT => DataType::Int16,
            MYSQL_TYPE_INT24 => DataType::Int32,
            MYSQL_TYPE_LONG if self.unsigned() => DataType::Int64,
            MYSQL_TYPE_LONG => DataType::Int32,
            MYSQL_TYPE_LONGLONG if self.unsigned() => DataType::Decimal128(20, 0),
            MYSQL_TYPE_LONGLONG => DataType::Int64,
            MYSQL_TYPE_FLOAT => DataType::Float32,
            MYSQL_TYPE_DOUBLE => DataType::Float64,
            MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => {
                // display length = precision + a point when scale > 0 + a sign when signed
                let scale = self.decimals;
                let point = u32::from(scale > 0);
                let sign = u32::from(!self.unsigned());
                let p = self.length.checked_sub(point + sign)?;
                let (p, s) = (u8::try_from(p).ok()?, i8::try_from(scale).ok()?);
                match p {
                    1..=38 => DataType::Decimal128(p, s),
                    39..=76 => DataType::Decimal256(p, s),
                    _ => return None,
                }
            }
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => DataType::Date32,
            MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => DataType::Time64(TimeUnit::Microsecond),
            MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            }
            // stored in UTC and sent in the session's time zone, which Bund sets to UTC
            MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            MYSQL_TYPE_VARCHAR
            | MYSQL_TYPE_VAR_STRING
            | MYSQL_TYPE_STRING
            | MYSQL_TYPE_BLOB
            | MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB => {
                if self.charset == BINARY_CHARSET {
                    DataType::Binary
                } else {
                    DataType::Utf8
                }
            }
            MYSQL_TYPE_JSON | MYSQL_TYPE_ENUM | MYSQL_TYPE_SET => DataType::Utf8,
            _ => return None,
        })
    }

    fn type_name(&self) -> String {
        let t = format!("{:?}", self.column_type);
        t.trim_start_matches("MYSQL_TYPE_").to_ascii_lowercase()
    }

    /// How a column of an unmapped type is read as text.
    fn text_fn(&self) -> &'static str {
        match self.column_type {
            ColumnType::MYSQL_TYPE_GEOMETRY => "ST_AsText",
            ColumnType::MYSQL_TYPE_BIT => "BIN",
            _ => "CAST_CHAR",
        }
    }
}

/// A connection error's text without anything that looks like a password.
fn redact(s: &str) -> String {
    match (s.find("://"), s.find('@')) {
        (Some(a), Some(b)) if b > a => format!("{}://…{}", &s[..a], &s[b..]),
        _ => s.to_string(),
    }
}

impl Builder {
    /// Appends one binary-protocol value, converted exactly to the column's type.
    pub(crate) fn append_mysql(&mut self, v: &Value) -> DecodeResult<()> {
        let bad = |what: &str| Err(format!("{} is not {what}", value_kind(v)));
        if let Value::NULL = v {
            self.append_null();
            return Ok(());
        }
        match self {
            Self::Boolean(b) => match v {
                Value::Int(i) => b.append_value(*i != 0),
                Value::UInt(i) => b.append_value(*i != 0),
                _ => return bad("an integer"),
            },
            Self::Int16(b) => b.append_value(integer(v)?),
            Self::Int32(b) => b.append_value(integer(v)?),
            Self::Int64(b) => b.append_value(integer(v)?),
            Self::Float32(b) => match v {
                Value::Float(f) => b.append_value(*f),
                _ => return bad("a FLOAT"),
            },
            Self::Float64(b) => match v {
                Value::Double(f) => b.append_value(*f),
                Value::Float(f) => b.append_value(f64::from(*f)),
                _ => return bad("a DOUBLE"),
            },
            Self::Decimal128(b, scale) => {
                let x = match v {
                    Value::UInt(u) => i128::from(*u).checked_mul(10_i128.pow(*scale as u32)),
                    Value::Int(i) => i128::from(*i).checked_mul(10_i128.pow(*scale as u32)),
                    Value::Bytes(t) => std::str::from_utf8(t)
                        .ok()
                        .and_then(|s| parse_decimal(s, *scale))
                        .and_then(|x| x.to_i128()),
                    _ => return bad("a DECIMAL"),
                };
                match x {
                    Some(x) => b.append_value(x),
                    None => return bad("a decimal of this precision and scale"),
                }
            }
            Self::Decimal256(b, scale) => {
                let x = match v {
                    Value::Bytes(t) => std::str::from_utf8(t)
                        .ok()
                        .and_then(|s| parse_decimal(s, *scale)),
                    _ => return bad("a DECIMAL"),
                };
                match x {
                    Some(x) => b.append_value(x),
                    None => return bad("a decimal of this precision and scale"),
                }
            }
            Self::Utf8(b) => match v {
                Value::Bytes(t) => b.append_value(
                    std::str::from_utf8(t).map_err(|e| format!("text is not UTF-8: {e}"))?,
                ),
                _ => return bad("text"),
            },
            Self::Binary(b) => match v {
                Value::Bytes(t) => b.append_value(t),
                _ => return bad("bytes"),
            },
            Self::Date32(b) => match v {
                Value::Date(y, m, d, 0, 0, 0, 0) => b.append_value(date(*y, *m, *d)?),
                _ => return bad("a DATE"),
            },
            Self::Timestamp(b) => match v {
                Value::Date(y, m, d, h, mi, s, us) => {
                    let days = i64::from(date(*y, *m, *d)?);
                    let secs =
                        ((days * 24 + i64::from(*h)) * 60 + i64::from(*mi)) * 60 + i64::from(*s);
                    b.append_value(secs * 1_000_000 + i64::from(*us));
                }
                _ => return bad("a DATETIME or TIMESTAMP"),
            },
            Self::Time64(b) => match v {
                Value::Time(false, 0, h, m, s, us) => b.append_value(
                    ((i64::from(*h) * 60 + i64::from(*m)) * 60 + i64::from(*s)) * 1_000_000
                        + i64::from(*us),
                ),
                Value::Time(..) => {
                    return Err(
                        "TIME value outside 00:00:00–23:59:59 cannot be a time of day; read the column as text (declare it varchar and cast it in a query source)".into(),
                    );
                }
                _ => return bad("a TIME"),
            },
            Self::List { .. } => return Err("MySQL has no array columns".into()),
        }
        Ok(())
    }
}

/// An integer value that fits the column's Arrow type.
fn integer<T: TryFrom<i64> + TryFrom<u64>>(v: &Value) -> DecodeResult<T> {
    match v {
        Value::Int(i) => T::try_from(*i).map_err(|_| format!("{i} does not fit the column")),
        Value::UInt(u) => T::try_from(*u).map_err(|_| format!("{u} does not fit the column")),
        other => Err(format!("{} is not an integer", value_kind(other))),
    }
}

/// Days since the epoch of a MySQL date; the zero date and its kin are refused.
fn date(y: u16, m: u8, d: u8) -> DecodeResult<i32> {
    let (y, m, d) = (i32::from(y), u32::from(m), u32::from(d));
    if !(1..=12).contains(&m) || !bund_udfs::domain::is_real_date(y, m, d) {
        return Err(format!(
            "{y:04}-{m:02}-{d:02} is not a calendar date (MySQL's zero dates have no Arrow value)"
        ));
    }
    Ok(bund_udfs::domain::days_from_civil(y, m, d))
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::NULL => "a NULL",
        Value::Bytes(_) => "a string",
        Value::Int(_) | Value::UInt(_) => "an integer",
        Value::Float(_) => "a FLOAT",
        Value::Double(_) => "a DOUBLE",
        Value::Date(..) => "a date",
        Value::Time(..) => "a time",
    }
}

#[async_trait]
impl Database for MysqlDatabase {
    fn settings(&self) -> &DatabaseSettings {
        &self.settings
    }

    fn dialect(&self) -> &'static dyn Dialect {
        &MysqlDialect
    }

    fn scan_name(&self) -> &'static str {
        "MysqlScanExec"
    }

    /// Columns of a table or query as Arrow fields, from the server's result metadata.
    async fn describe(
        &self,
        source: &RemoteSource,
    ) -> Result<Vec<(Field, RemoteColumn)>, SourceError> {
        let mut conn = self.connection().await?;
        let sql = format!(
            "SELECT * FROM {} LIMIT 0",
            source.sql_from_item(&MysqlDialect)
        );
        let result = conn.query_iter(sql).await.map_err(|e| self.my_error(&e))?;
        let columns: Vec<MyColumn> = result
            .columns_ref()
            .iter()
            .map(|c| MyColumn {
                name: c.name_str().into_owned(),
                column_type: c.column_type(),
                flags: c.flags(),
                length: c.column_length(),
                decimals: c.decimals(),
                charset: c.character_set(),
            })
            .collect();
        result.drop_result().await.map_err(|e| self.my_error(&e))?;
        // The collation of each column of a table: only a binary one that does not pad
        // (MariaDB's `…_nopad_bin`, MySQL's `utf8mb4_0900_bin`) compares bytes as Bund does;
        // the usual ones ignore case and trailing spaces. A query's columns stay unknown.
        let mut byte_exact = std::collections::HashSet::new();
        if let RemoteSource::Table(parts) = source {
            let (schema, table) = match parts.as_slice() {
                [schema, table] => (Some(schema.clone()), table.clone()),
                [table] => (None, table.clone()),
                _ => (None, String::new()),
            };
            let rows: Vec<(String, Option<String>)> = conn
                .exec(
                    "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
                    (schema, table),
                )
                .await
                .map_err(|e| self.my_error(&e))?;
            for (column, collation) in rows {
                if collation.is_some_and(|c| c.ends_with("_nopad_bin") || c == "utf8mb4_0900_bin") {
                    byte_exact.insert(column);
                }
            }
        }
        conn.release();
        if columns.is_empty() {
            return Err(self
                .settings
                .error(SourceErrorKind::Remote, "the table has no columns"));
        }
        columns
            .into_iter()
            .map(|c| {
                let (dt, as_text) =
                    self.settings
                        .column_type(&c.name, &c.type_name(), c.arrow_type())?;
                Ok((
                    Field::new(&c.name, dt, !c.flags.contains(ColumnFlags::NOT_NULL_FLAG)),
                    RemoteColumn {
                        text_fn: as_text.then(|| c.text_fn()),
                        exact_text: byte_exact.contains(&c.name),
                        name: c.name,
                        as_text,
                    },
                ))
            })
            .collect()
    }

    fn read(self: Arc<Self>, scan: Scan, builder: &mut RecordBatchReceiverStreamBuilder) {
        let tx = builder.tx();
        builder.spawn(read(self, scan, tx));
    }
}

/// Streams one prepared statement's rows into `tx` as batches of `batch_size` rows; when
/// the receiver is gone (the query was cancelled) the statement is killed.
async fn read(db: Arc<MysqlDatabase>, scan: Scan, tx: Sender<Result<RecordBatch>>) -> Result<()> {
    let Scan {
        sql,
        schema,
        batch_size,
    } = scan;
    let remote = |m: String| DataFusionError::from(db.settings.error(SourceErrorKind::Remote, m));
    let mut batches = RowBatches::new(&schema, batch_size).map_err(remote)?;
    let mut conn = db.connection().await?;
    let id = conn.id();
    let mut stream = conn
        .exec_iter(sql.as_str(), ())
        .await
        .map_err(|e| db.my_error(&e))?;
    while let Some(row) = stream.next().await.map_err(|e| db.my_error(&e))? {
        for i in 0..batches.width() {
            let v = row.as_ref(i).unwrap_or(&Value::NULL);
            batches.append(i, |b| b.append_mysql(v)).map_err(remote)?;
        }
        if let Some(batch) = batches.end_row().map_err(remote)?
            && tx.send(Ok(batch)).await.is_err()
        {
            db.kill(id);
            return Ok(()); // the consumer is gone: the query was cancelled
        }
    }
    drop(stream);
    conn.release();
    if let Some(batch) = batches.finish().map_err(remote)? {
        let _ = tx.send(Ok(batch)).await;
    }
    Ok(())
}

/// MySQL's and MariaDB's dialect: back-quoted names; values are converted while reading,
/// and a column of a type Bund does not map is turned into text in the SELECT.
#[derive(Debug)]
pub(crate) struct MysqlDialect;

impl Dialect for MysqlDialect {
    /// MySQL and MariaDB neither merge a derived table with LIMIT nor push conditions into it.
    fn fence(&self) -> Option<&'static str> {
        Some(" LIMIT 18446744073709551615")
    }

    fn quote_ident(&self, name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }

    /// MySQL's BOOL is TINYINT(1), where 2 is true to Bund but not `= TRUE`; TIMESTAMP and
    /// TIME compare in the session's time zone and range.
    fn compares(&self, t: &DataType) -> bool {
        matches!(
            t,
            DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float64
                | DataType::Decimal128(..)
                | DataType::Decimal256(..)
                | DataType::Utf8
                | DataType::Date32
        )
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
            | DataType::Decimal256(..)
            | DataType::Utf8
            | DataType::Binary
            | DataType::Date32
            | DataType::Time64(TimeUnit::Microsecond)
            | DataType::Timestamp(TimeUnit::Microsecond, _) => Ok(()),
            other => Err(DataFusionError::Plan(format!(
                "Bund cannot read a MySQL column as {other}"
            ))),
        }
    }

    fn select_item(&self, name: &str, column: &RemoteColumn, _t: &DataType) -> Result<String> {
        Ok(match column.text_fn {
            Some("CAST_CHAR") => format!("CAST({name} AS CHAR)"),
            Some(f) => format!("{f}({name})"),
            None => name.to_string(),
        })
    }

    /// MySQL's BOOL is an integer.
    fn exact_booleans(&self) -> bool {
        false
    }

    /// MySQL sums integers as DECIMAL.
    fn sum(&self, c: &str, t: &DataType) -> String {
        if matches!(t, DataType::Int16 | DataType::Int32 | DataType::Int64) {
            format!("CAST(SUM({c}) AS SIGNED)")
        } else {
            format!("SUM({c})")
        }
    }

    /// MySQL has no NULLS FIRST/LAST: order by the NULL test first.
    fn order_key(&self, c: &str, ascending: bool, nulls_first: bool) -> String {
        format!(
            "({c} IS NULL) {}, {c} {}",
            if nulls_first { "DESC" } else { "ASC" },
            if ascending { "ASC" } else { "DESC" }
        )
    }
}
