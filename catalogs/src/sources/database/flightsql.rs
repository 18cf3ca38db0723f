//! Flight SQL sources: another Flight SQL service (a district platform, another Bund) as a
//! bureau database. Bund logs in with HTTP Basic credentials from the URL (the token the
//! service returns is kept and renewed when it expires), asks for a statement's schema with
//! `GetFlightInfo`, and streams its endpoints' batches with `DoGet`, cast to the table's
//! declared types where they differ. Plain gRPC only: `grpc://user:password@host:port`.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_flight::FlightInfo;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::{Field, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::{DataFusionError, Result};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::Sender;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use async_trait::async_trait;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;

use super::{
    Database, DatabaseSettings, Dialect, RemoteColumn, RemoteSource, Scan, SourceError,
    SourceErrorKind,
};

/// A Flight SQL service: a lazily connected channel and the session token.
pub(crate) struct FlightSqlDatabase {
    pub(crate) settings: DatabaseSettings,
    channel: Channel,
    user: String,
    password: String,
    token: Mutex<Option<String>>,
    slots: Arc<Semaphore>,
}

impl fmt::Debug for FlightSqlDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlightSqlDatabase")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl FlightSqlDatabase {
    pub(crate) fn new(settings: DatabaseSettings) -> Result<Self, (&'static str, String)> {
        let bad = |why: &str| {
            (
                "url_env",
                format!("the connection URL {why}; write grpc://user:password@host:port"),
            )
        };
        let url = url::Url::parse(&settings.url).map_err(|_| bad("does not parse"))?;
        if !matches!(url.scheme(), "grpc" | "grpc+tcp") {
            return Err(bad("must start with grpc:// (TLS is not supported yet)"));
        }
        let host = url.host_str().ok_or_else(|| bad("has no host"))?;
        let port = url.port().ok_or_else(|| bad("has no port"))?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (user, password) = (decode(url.username()), decode(url.password().unwrap_or("")));
        let endpoint = Endpoint::from_shared(format!("http://{host}:{port}"))
            .map_err(|_| bad("has a bad host or port"))?
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true);
        let slots = Arc::new(Semaphore::new(settings.pool_size));
        Ok(Self {
            channel: endpoint.connect_lazy(),
            user,
            password,
            token: Mutex::new(None),
            slots,
            settings,
        })
    }

    /// Classifies a Flight error: cannot connect or log in, cancelled past its time, or
    /// the service refused the statement.
    fn flight_error(&self, e: &FlightError) -> SourceError {
        match e {
            FlightError::Tonic(s) => {
                let kind = match s.code() {
                    Code::Unavailable | Code::Unauthenticated | Code::PermissionDenied => {
                        SourceErrorKind::Unavailable
                    }
                    Code::DeadlineExceeded => SourceErrorKind::Timeout,
                    Code::Unknown if s.message().contains("transport") => {
                        SourceErrorKind::Unavailable
                    }
                    _ => SourceErrorKind::Remote,
                };
                self.settings
                    .error(kind, format!("{:?}: {}", s.code(), s.message()))
            }
            // the handshake's errors arrive as text
            other => {
                let text = other.to_string();
                let kind = if [
                    "Unauthenticated",
                    "Unavailable",
                    "transport error",
                    "PermissionDenied",
                ]
                .iter()
                .any(|m| text.contains(m))
                {
                    SourceErrorKind::Unavailable
                } else {
                    SourceErrorKind::Remote
                };
                self.settings.error(kind, text)
            }
        }
    }

    fn timed_out(&self, what: &str, limit: Duration) -> SourceError {
        let kind = if what == "log in" {
            SourceErrorKind::Unavailable
        } else {
            SourceErrorKind::Timeout
        };
        self.settings.error(
            kind,
            format!("no answer to {what} within {} s", limit.as_secs_f64()),
        )
    }

    /// A client with a session token, logging in when there is none.
    async fn client(&self, fresh: bool) -> Result<FlightSqlServiceClient<Channel>, SourceError> {
        let mut client = FlightSqlServiceClient::new(self.channel.clone());
        let cached = if fresh {
            None
        } else {
            self.token.lock().ok().and_then(|t| t.clone())
        };
        if let Some(token) = cached {
            client.set_token(token);
            return Ok(client);
        }
        let limit = self.settings.connect_timeout;
        match tokio::time::timeout(limit, client.handshake(&self.user, &self.password)).await {
            Err(_) => return Err(self.timed_out("log in", limit)),
            Ok(Err(e)) => {
                let mut err = self.flight_error(&e);
                err.kind = SourceErrorKind::Unavailable;
                return Err(err);
            }
            Ok(Ok(_)) => {}
        }
        if let Ok(mut t) = self.token.lock() {
            *t = client.token().cloned();
        }
        Ok(client)
    }

    /// `GetFlightInfo` for a statement, logging in again once when the token expired.
    async fn info(
        &self,
        sql: &str,
    ) -> Result<(FlightSqlServiceClient<Channel>, FlightInfo), SourceError> {
        let limit = self.settings.statement_timeout;
        let mut fresh = false;
        loop {
            let mut client = self.client(fresh).await?;
            match tokio::time::timeout(limit, client.execute(sql.to_string(), None)).await {
                Err(_) => return Err(self.timed_out("the statement", limit)),
                Ok(Ok(info)) => return Ok((client, info)),
                Ok(Err(FlightError::Tonic(s))) if s.code() == Code::Unauthenticated && !fresh => {
                    fresh = true; // the session expired: log in again
                }
                Ok(Err(e)) => return Err(self.flight_error(&e)),
            }
        }
    }
}

#[async_trait]
impl Database for FlightSqlDatabase {
    fn settings(&self) -> &DatabaseSettings {
        &self.settings
    }

    fn dialect(&self) -> &'static dyn Dialect {
        &FlightSqlDialect
    }

    fn scan_name(&self) -> &'static str {
        "FlightSqlScanExec"
    }

    /// Columns of a table or query: the schema the service announces for it.
    async fn describe(
        &self,
        source: &RemoteSource,
    ) -> Result<Vec<(Field, RemoteColumn)>, SourceError> {
        let _slot = self.slots.acquire().await;
        let sql = format!(
            "SELECT * FROM {} LIMIT 0",
            source.sql_from_item(&FlightSqlDialect)
        );
        let (_, info) = self.info(&sql).await?;
        let schema = info.try_decode_schema().map_err(|e| {
            self.settings
                .error(SourceErrorKind::Remote, format!("unreadable schema: {e}"))
        })?;
        if schema.fields().is_empty() {
            return Err(self
                .settings
                .error(SourceErrorKind::Remote, "the table has no columns"));
        }
        Ok(schema
            .fields()
            .iter()
            .map(|f| {
                (
                    f.as_ref().clone(),
                    RemoteColumn {
                        name: f.name().clone(),
                        as_text: false,
                        text_fn: None,
                        // a service's collations are unknown
                        exact_text: false,
                    },
                )
            })
            .collect())
    }

    fn read(self: Arc<Self>, scan: Scan, builder: &mut RecordBatchReceiverStreamBuilder) {
        let tx = builder.tx();
        builder.spawn(read(self, scan, tx));
    }
}

/// Streams one statement's batches from every endpoint into `tx`, cast to `schema`; stops
/// when the receiver is gone (dropping the streams cancels them at the service).
async fn read(
    db: Arc<FlightSqlDatabase>,
    scan: Scan,
    tx: Sender<Result<RecordBatch>>,
) -> Result<()> {
    let Scan { sql, schema, .. } = scan;
    let _slot = db.slots.acquire().await;
    let deadline = tokio::time::Instant::now() + db.settings.statement_timeout;
    let (mut client, info) = db.info(&sql).await?;
    for endpoint in info.endpoint {
        let Some(ticket) = endpoint.ticket else {
            continue;
        };
        let mut stream = match tokio::time::timeout_at(deadline, client.do_get(ticket)).await {
            Err(_) => {
                return Err(db
                    .timed_out("the statement", db.settings.statement_timeout)
                    .into());
            }
            Ok(r) => r.map_err(|e| db.flight_error(&e))?,
        };
        loop {
            let next = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => {
                    return Err(db
                        .timed_out("the statement", db.settings.statement_timeout)
                        .into());
                }
                Ok(None) => break,
                Ok(Some(r)) => r.map_err(|e| db.flight_error(&e))?,
            };
            let batch = conform(&next, &schema).map_err(|m| {
                DataFusionError::from(db.settings.error(SourceErrorKind::Remote, m))
            })?;
            if tx.send(Ok(batch)).await.is_err() {
                return Ok(()); // the consumer is gone: the query was cancelled
            }
        }
    }
    Ok(())
}

/// The batch with the table's column types (a declared type, or a view type sent as its
/// plain counterpart), by position; the service's column count must match.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    if schema.fields().is_empty() {
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        return RecordBatch::try_new_with_options(Arc::clone(schema), vec![], &options)
            .map_err(|e| e.to_string());
    }
    if batch.num_columns() != schema.fields().len() {
        return Err(format!(
            "the service sent {} columns, {} expected",
            batch.num_columns(),
            schema.fields().len()
        ));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(Arc::clone(c))
            } else {
                cast(c, f.data_type()).map_err(|e| format!("column `{}`: {e}", f.name()))
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| e.to_string())
}

/// Another Flight SQL service's dialect: batches arrive as Arrow and are cast to the
/// declared types. The service parses `1.50` as it likes (a float, in DataFusion), its time
/// zone and its collations are unknown: decimals and booleans are neither compared, grouped
/// nor summed there.
#[derive(Debug)]
pub(crate) struct FlightSqlDialect;

impl Dialect for FlightSqlDialect {
    fn compares(&self, t: &DataType) -> bool {
        matches!(
            t,
            DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float64
                | DataType::Boolean
                | DataType::Utf8
                | DataType::Date32
        )
    }

    fn reads(&self, _t: &DataType) -> Result<()> {
        Ok(())
    }

    fn exact_decimals(&self) -> bool {
        false
    }

    fn exact_booleans(&self) -> bool {
        false
    }
}
