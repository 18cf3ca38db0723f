//! PostgreSQL sources: a small pool of lazily made connections, the schema of a table or
//! query read from the server's catalog, and scans as `COPY (SELECT …) TO STDOUT (FORMAT
//! binary)` — the server's fastest way out — decoded into Arrow as the bytes arrive.

use datafusion::arrow::record_batch::RecordBatch;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::mpsc::Sender;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::{DataFusionError, Result};
use futures::StreamExt;
use tokio_postgres::{Client, Config, NoTls};

use super::copy::CopyDecoder;
use super::pool::{Pool, Pooled};
use async_trait::async_trait;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;

use super::{
    Database, DatabaseSettings, Dialect, RemoteColumn, RemoteSource, Scan, SourceError,
    SourceErrorKind,
};

/// A PostgreSQL database: settings and idle connections.
pub(crate) struct PgDatabase {
    pub(crate) settings: DatabaseSettings,
    config: Config,
    pool: Pool<Client>,
}

impl fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgDatabase")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PgDatabase {
    pub(crate) fn new(settings: DatabaseSettings) -> Result<Self, (&'static str, String)> {
        let mut config = Config::from_str(&settings.url).map_err(|e| {
            (
                "url_env",
                format!(
                    "the connection URL does not parse: {}",
                    redact(&e.to_string())
                ),
            )
        })?;
        config
            .connect_timeout(settings.connect_timeout)
            .application_name("bund")
            .options(format!(
                "-c statement_timeout={} -c standard_conforming_strings=on -c DateStyle=ISO -c TimeZone=UTC",
                settings.statement_timeout.as_millis()
            ));
        Ok(Self {
            pool: Pool::new(settings.pool_size),
            settings,
            config,
        })
    }

    /// Classifies a client error: connection trouble, a statement timeout, or a refusal.
    fn pg_error(&self, e: &tokio_postgres::Error) -> SourceError {
        if let Some(db) = e.as_db_error() {
            let kind = if db.code() == &tokio_postgres::error::SqlState::QUERY_CANCELED {
                SourceErrorKind::Timeout
            } else if ["08", "28", "3D", "53", "57P"]
                .iter()
                .any(|class| db.code().code().starts_with(class))
            {
                // connection, authentication, unknown database, out of resources, shutdown:
                // the source cannot serve now, which is not a mistake in the catalog
                SourceErrorKind::Unavailable
            } else {
                SourceErrorKind::Remote
            };
            return self.settings.error(kind, db.message().to_string());
        }
        self.settings
            .error(SourceErrorKind::Unavailable, redact(&e.to_string()))
    }

    /// An idle connection that still works, or a new one within the connect timeout.
    pub(crate) async fn connection(&self) -> Result<Pooled<'_, Client>, SourceError> {
        let slot = self.pool.slot().await.ok_or_else(|| {
            self.settings
                .error(SourceErrorKind::Unavailable, "the pool is closed")
        })?;
        if let Some(c) = self.pool.idle() {
            return Ok(self.pool.lend(c, slot));
        }
        let timeout = self.settings.connect_timeout;
        let connect = tokio::time::timeout(timeout, self.config.connect(NoTls)).await;
        let (client, connection) = match connect {
            Err(_) => {
                return Err(self.settings.error(
                    SourceErrorKind::Unavailable,
                    format!("no connection within {} s", timeout.as_secs_f64()),
                ));
            }
            Ok(Err(e)) => return Err(self.pg_error(&e)),
            Ok(Ok(pair)) => pair,
        };
        let name = self.settings.name.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(source = name, error = %redact(&e.to_string()), "connection closed");
            }
        });
        Ok(self.pool.lend(client, slot))
    }
}

struct PgColumn {
    name: String,
    oid: u32,
    typmod: i32,
    not_null: bool,
    type_name: String,
    elem_oid: u32,
    /// Whether its collation is deterministic; `None` when unknown.
    deterministic: Option<bool>,
}

/// The Arrow type a PostgreSQL type is read as; `None` for types Bund does not map.
fn arrow_type(oid: u32, typmod: i32, elem_oid: u32) -> Option<DataType> {
    Some(match oid {
        16 => DataType::Boolean,
        21 => DataType::Int16,
        23 => DataType::Int32,
        20 => DataType::Int64,
        700 => DataType::Float32,
        701 => DataType::Float64,
        1700 => {
            // typmod = ((precision << 16) | scale) + 4; -1 when unconstrained
            if typmod < 4 {
                return None;
            }
            let p = ((typmod - 4) >> 16) & 0xffff;
            let s = (typmod - 4) & 0xffff;
            let (p, s) = (u8::try_from(p).ok()?, i8::try_from(s).ok()?);
            match p {
                1..=38 => DataType::Decimal128(p, s),
                39..=76 => DataType::Decimal256(p, s),
                _ => return None,
            }
        }
        // text, varchar, bpchar, name, json, jsonb, uuid, xml: read as text
        25 | 1043 | 1042 | 19 | 114 | 3802 | 2950 | 142 => DataType::Utf8,
        17 => DataType::Binary,
        1082 => DataType::Date32,
        1083 => DataType::Time64(TimeUnit::Microsecond),
        1114 => DataType::Timestamp(TimeUnit::Microsecond, None),
        1184 => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ if elem_oid != 0 => {
            // an array's typmod is its element's: numeric(p,s)[] maps, numeric[] does not
            let elem = arrow_type(elem_oid, typmod, 0)?;
            DataType::List(Arc::new(Field::new("item", elem, true)))
        }
        _ => return None,
    })
}

/// A connection error's text without anything that looks like a password.
fn redact(s: &str) -> String {
    // tokio-postgres errors do not echo the configuration; this guards against a future
    // change doing so with a URL.
    match (s.find("://"), s.find('@')) {
        (Some(a), Some(b)) if b > a => format!("{}://…{}", &s[..a], &s[b..]),
        _ => s.to_string(),
    }
}

#[async_trait]
impl Database for PgDatabase {
    fn settings(&self) -> &DatabaseSettings {
        &self.settings
    }

    fn dialect(&self) -> &'static dyn Dialect {
        &PostgresDialect
    }

    fn scan_name(&self) -> &'static str {
        "PostgresScanExec"
    }

    /// Columns of a table or query as Arrow fields, with what must be read as text.
    async fn describe(
        &self,
        source: &RemoteSource,
    ) -> Result<Vec<(Field, RemoteColumn)>, SourceError> {
        let client = self.connection().await?;
        let rows = match source {
            RemoteSource::Table(parts) => {
                let name = parts
                    .iter()
                    .map(|p| PostgresDialect.quote_ident(p))
                    .collect::<Vec<_>>()
                    .join(".");
                let sql = "SELECT a.attname::text, a.atttypid::int4, a.atttypmod, a.attnotnull, \
                           format_type(a.atttypid, a.atttypmod), \
                           COALESCE(et.oid::int4, 0), COALESCE(a.attndims, 0)::int4, \
                           COALESCE(co.collisdeterministic, true) \
                           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                           LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
                           LEFT JOIN pg_collation co ON co.oid = a.attcollation \
                           WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 \
                           AND NOT a.attisdropped ORDER BY a.attnum";
                client
                    .query(sql, &[&name])
                    .await
                    .map_err(|e| self.pg_error(&e))?
                    .iter()
                    .map(|r| PgColumn {
                        name: r.get(0),
                        oid: r.get::<_, i32>(1) as u32,
                        typmod: r.get(2),
                        not_null: r.get(3),
                        type_name: r.get(4),
                        elem_oid: r.get::<_, i32>(5) as u32,
                        deterministic: Some(r.get(7)),
                    })
                    .collect::<Vec<_>>()
            }
            RemoteSource::Query(q) => {
                let stmt = client
                    .prepare(&format!("SELECT * FROM ({q}) AS bund_source LIMIT 0"))
                    .await
                    .map_err(|e| self.pg_error(&e))?;
                // a column taken from a table has that column's collation; a computed one
                // may have any (an explicit COLLATE): unknown
                let collation = "SELECT co.collisdeterministic FROM pg_attribute a \
                                 JOIN pg_collation co ON co.oid = a.attcollation \
                                 WHERE a.attrelid = $1 AND a.attnum = $2";
                let mut out = Vec::with_capacity(stmt.columns().len());
                for c in stmt.columns() {
                    let deterministic = match (c.table_oid(), c.column_id()) {
                        (Some(table), Some(column)) => client
                            .query_opt(collation, &[&table, &column])
                            .await
                            .map_err(|e| self.pg_error(&e))?
                            .map(|r| r.get::<_, bool>(0))
                            .or(Some(true)),
                        _ => None,
                    };
                    out.push(PgColumn {
                        name: c.name().to_string(),
                        oid: c.type_().oid(),
                        typmod: -1,
                        not_null: false,
                        type_name: c.type_().name().to_string(),
                        elem_oid: match c.type_().kind() {
                            tokio_postgres::types::Kind::Array(e) => e.oid(),
                            _ => 0,
                        },
                        deterministic,
                    });
                }
                out
            }
        };
        client.release();
        if rows.is_empty() {
            return Err(self
                .settings
                .error(SourceErrorKind::Remote, "the table has no columns"));
        }
        rows.into_iter()
            .map(|c| {
                let (dt, as_text) = self.settings.column_type(
                    &c.name,
                    &c.type_name,
                    arrow_type(c.oid, c.typmod, c.elem_oid),
                )?;
                Ok((
                    Field::new(&c.name, dt, !c.not_null),
                    RemoteColumn {
                        name: c.name,
                        // json, jsonb, uuid and xml are read as text but compared as their
                        // own type there ('{"a":1}' = '{"a": 1}'; a literal that is not a
                        // uuid fails the statement): never filtered or grouped remotely
                        as_text: as_text || matches!(c.oid, 114 | 3802 | 2950 | 142),
                        text_fn: None,
                        // text, varchar and name under a deterministic collation compare
                        // bytes; char(n) ignores trailing spaces
                        exact_text: matches!(c.oid, 25 | 1043 | 19)
                            && c.deterministic == Some(true),
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

/// Streams one `COPY (sql) TO STDOUT (FORMAT binary)` into `tx` as batches of
/// `batch_size` rows; stops early when the receiver is gone (the query was cancelled).
async fn read(db: Arc<PgDatabase>, scan: Scan, tx: Sender<Result<RecordBatch>>) -> Result<()> {
    let Scan {
        sql,
        schema,
        batch_size,
    } = scan;
    let copy = format!("COPY ({sql}) TO STDOUT (FORMAT binary)");
    let mut decoder = CopyDecoder::new(schema, batch_size)
        .map_err(|m| DataFusionError::from(db.settings.error(SourceErrorKind::Remote, m)))?;
    let client = db.connection().await?;
    let stream = client
        .copy_out(copy.as_str())
        .await
        .map_err(|e| db.pg_error(&e))?;
    futures::pin_mut!(stream);
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    loop {
        let consumed = decoder
            .decode(&buf[start..])
            .map_err(|m| db.settings.error(SourceErrorKind::Remote, m))?;
        start += consumed;
        if decoder.rows() >= batch_size || (decoder.finished() && decoder.rows() > 0) {
            let batch = decoder
                .flush()
                .map_err(|m| db.settings.error(SourceErrorKind::Remote, m))?;
            if tx.send(Ok(batch)).await.is_err() {
                return Ok(()); // the consumer is gone: the query was cancelled
            }
            continue;
        }
        if decoder.finished() {
            break;
        }
        match stream.next().await {
            Some(Ok(bytes)) => {
                // keep the unread tail, then append
                buf.drain(..start);
                start = 0;
                buf.extend_from_slice(&bytes);
            }
            Some(Err(e)) => return Err(db.pg_error(&e).into()),
            None => {
                return Err(db
                    .settings
                    .error(SourceErrorKind::Unavailable, "the COPY stream ended early")
                    .into());
            }
        }
    }
    // drain the end of the COPY (CommandComplete) so the connection can be reused
    while let Some(r) = stream.next().await {
        r.map_err(|e| db.pg_error(&e))?;
    }
    client.release();
    Ok(())
}

/// The Arrow schema of described columns.
pub(crate) fn schema_of(cols: &[(Field, RemoteColumn)]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>(),
    ))
}

/// PostgreSQL's dialect: every column is cast in the SELECT to the type Bund decodes, so
/// that the binary COPY format carries exactly those types.
#[derive(Debug)]
pub(crate) struct PostgresDialect;

impl Dialect for PostgresDialect {
    /// PostgreSQL neither pulls up a subquery with OFFSET nor pushes conditions into it.
    fn fence(&self) -> Option<&'static str> {
        Some(" OFFSET 0")
    }

    fn compares(&self, _t: &DataType) -> bool {
        true
    }

    fn reads(&self, t: &DataType) -> Result<()> {
        pg_type(t).map(|_| ())
    }

    fn cast(&self, expr: &str, t: &DataType) -> Result<String> {
        Ok(format!("{expr}::{}", pg_type(t)?))
    }

    fn cast_compound(&self, expr: &str, t: &DataType) -> Result<String> {
        Ok(format!("({expr})::{}", pg_type(t)?))
    }

    fn selects_nothing(&self) -> bool {
        true
    }
}

/// The PostgreSQL type Bund reads a column of Arrow type `t` as.
fn pg_type(t: &DataType) -> Result<String> {
    Ok(match t {
        DataType::Boolean => "bool".into(),
        DataType::Int16 => "int2".into(),
        DataType::Int32 => "int4".into(),
        DataType::Int64 => "int8".into(),
        DataType::Float32 => "float4".into(),
        DataType::Float64 => "float8".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::Utf8 => "text".into(),
        DataType::Binary => "bytea".into(),
        DataType::Date32 => "date".into(),
        DataType::Time64(_) => "time".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::List(f) => format!("{}[]", pg_type(f.data_type())?),
        other => {
            return Err(datafusion::common::DataFusionError::Plan(format!(
                "Bund cannot read a PostgreSQL column as {other}"
            )));
        }
    })
}
