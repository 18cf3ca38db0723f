//! Bund's Flight SQL service: authentication, statements, prepared statements, metadata,
//! cancellation. Every RPC but Handshake requires a valid session token.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{GetDbSchemasBuilder, GetTablesBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandStatementQuery,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightDescriptor,
    FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc,
    Ticket, decode::FlightRecordBatchStream,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bund_catalogs::{BUND_CATALOG, DatasetKind, Principal, ServerSettings};
use bund_planner::{Engine, PlannedQuery};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use std::time::{Duration, Instant};
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::audit;
use tracing::Instrument;

use crate::auth::{Claims, Kind, Signer, parse_basic};
use crate::error::{Error, Result, audit_text, status};
use crate::executor::{Executors, Stopped};
use crate::logins::{Logins, NotChecked};
use crate::metadata::{FOREIGN_KEYS_SCHEMA, PRIMARY_KEYS_SCHEMA, SQL_INFO, XDBC_TYPES};
use crate::query::{FlightDataStream, Limiter, QueryRun, Running, stream_query};

/// Table types Bund reports.
const TABLE_TYPES: &[&str] = &["TABLE", "VIEW"];
/// Prepared handles whose parameters were bound, kept for clients that ignore the updated
/// handle of DoPutPreparedStatementResult: at most this many bytes of handles (each holds
/// its statement and its parameters); the oldest binding is dropped first.
const MAX_BOUND_BYTES: usize = 64 << 20;
/// Longest user name or password accepted at login.
const MAX_CREDENTIAL_BYTES: usize = 1024;

/// The engine of the current configuration; a reload replaces it, queries already planned
/// keep the one they started with.
pub(crate) type EngineSlot = Arc<RwLock<Arc<Engine>>>;

pub(crate) struct BundService {
    engine: EngineSlot,
    executors: Arc<Executors>,
    signer: Signer,
    settings: ServerSettings,
    limiter: Limiter,
    running: Arc<Running>,
    bound: Mutex<BoundHandles>,
    /// The threads that check passwords.
    logins: Logins,
}

#[derive(Default)]
struct BoundHandles {
    by_handle: HashMap<Vec<u8>, Vec<u8>>,
    order: std::collections::VecDeque<Vec<u8>>,
    /// Bytes of the handles held, both sides.
    bytes: usize,
}

impl BoundHandles {
    fn insert(&mut self, original: Vec<u8>, bound: Vec<u8>) {
        let size = original.len() + bound.len();
        match self.by_handle.insert(original.clone(), bound) {
            Some(previous) => self.bytes = self.bytes + size - original.len() - previous.len(),
            None => {
                self.bytes += size;
                self.order.push_back(original);
            }
        }
        while self.bytes > MAX_BOUND_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.forget(&old);
        }
    }

    fn forget(&mut self, original: &[u8]) {
        if let Some(bound) = self.by_handle.remove(original) {
            self.bytes -= original.len() + bound.len();
        }
    }
}

/// A filter pattern of a metadata command that cannot be used (one too large to compile
/// into a regular expression): the client's request, not Bund's bug.
fn bad_pattern(e: FlightError) -> Error {
    match e {
        FlightError::Arrow(datafusion::arrow::error::ArrowError::InvalidArgumentError(m)) => {
            Error::BadRequest(format!("the filter pattern cannot be used: {m}"))
        }
        other => Error::from(other),
    }
}

/// Bound parameters past `max_parameter_kb`.
#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bound parameters too large")
    }
}

impl std::error::Error for TooLarge {}

/// Whether the current request's source may go on (see `audit`).
fn admit() -> Result<()> {
    audit::admit(&audit::context().source()).map_err(|r| match r {
        audit::Refusal::Unwritable => Error::AuditUnwritable,
        audit::Refusal::Budget { retry_after_secs } => Error::RateLimited { retry_after_secs },
    })
}

/// The error of planning that produced no plan on its executor.
fn planning_stopped(stopped: Stopped) -> Error {
    match stopped {
        Stopped::Deadline => Error::Planner(bund_planner::Error::Timeout),
        Stopped::Panicked(message) => Error::Internal(format!("planning panicked: {message}")),
    }
}

fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The client's address, for the audit and its budgets.
fn peer<T>(request: &Request<T>) -> Option<String> {
    request.remote_addr().map(|a| a.ip().to_string())
}

/// Runs one RPC inside a span carrying its request id, maps its error to a status and
/// writes its audit record (a query stream writes its own when it ends).
async fn traced<T>(
    method: &'static str,
    client: Option<String>,
    fut: impl std::future::Future<Output = Result<T>>,
    request_id: &str,
) -> Result<T, Status> {
    let span = tracing::info_span!("rpc", method, request_id);
    let (result, ctx) = audit::with_context(client, fut.instrument(span.clone())).await;
    match result {
        Ok(v) => {
            if !ctx.recorded_elsewhere {
                audit::append(ctx.record(request_id, method));
            }
            Ok(v)
        }
        Err(e) => {
            let _enter = span.enter();
            tracing::info!(error = %e, "request refused");
            let status = status(&e, request_id);
            // Every refusal is audited, with what the request had established (past its
            // source's budget, it is only counted).
            let mut record = ctx.record(request_id, method);
            record.outcome = match status.code() {
                Code::Unauthenticated | Code::PermissionDenied | Code::NotFound => "refused",
                Code::ResourceExhausted => "busy",
                Code::DeadlineExceeded => "timeout",
                Code::Cancelled => "cancelled",
                _ => "error",
            }
            .to_string();
            record.code = Some(format!("{:?}", status.code()));
            record.set_error(&match &e {
                // a failure while running may quote a value from a row
                Error::Planner(bund_planner::Error::Execution(df)) => audit_text(df),
                _ => status.message().to_string(),
            });
            audit::append(record);
            Err(status)
        }
    }
}

fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes> {
    let message: std::result::Result<IpcMessage, _> =
        SchemaAsIpc::new(schema, &IpcWriteOptions::default()).try_into();
    message
        .map(|m| m.0)
        .map_err(|e| Error::Internal(format!("encoding a schema: {e}")))
}

fn encode_params(batch: &RecordBatch) -> Result<String> {
    let mut buf = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut buf, batch.schema_ref())?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(STANDARD.encode(buf))
}

fn decode_params(encoded: &str) -> Result<RecordBatch> {
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let mut reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    match reader.next() {
        Some(Ok(b)) => Ok(b),
        _ => Err(Error::Internal(
            "bound parameters could not be read back".into(),
        )),
    }
}

/// A FlightInfo whose single endpoint carries `ticket`.
fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo> {
    FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Error::Internal(format!("encoding a schema: {e}")))
        .map(|info| {
            info.with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
                .with_descriptor(descriptor)
                .with_total_records(-1)
                .with_total_bytes(-1)
        })
}

/// One small metadata batch as a Flight stream.
fn batch_stream(schema: SchemaRef, batch: RecordBatch) -> FlightDataStream {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(
            async move { Ok::<_, FlightError>(batch) },
        ))
        .map_err(|e| Status::internal(format!("encoding metadata: {e}")));
    Box::pin(stream)
}

/// An empty result with the given schema (Bund declares no keys).
fn empty(schema: &SchemaRef) -> (SchemaRef, RecordBatch) {
    (
        Arc::clone(schema),
        RecordBatch::new_empty(Arc::clone(schema)),
    )
}

impl BundService {
    pub(crate) fn new(
        engine: Arc<Engine>,
        signer: Signer,
        executors: Arc<Executors>,
        logins: Logins,
    ) -> Self {
        let settings = engine.catalog().settings.clone();
        Self {
            logins,
            limiter: Limiter::new(&settings),
            executors,
            engine: Arc::new(RwLock::new(engine)),
            signer,
            settings,
            running: Arc::new(Running::default()),
            bound: Mutex::new(BoundHandles::default()),
        }
    }

    /// The slot the reloader swaps new engines into.
    pub(crate) fn engine_slot(&self) -> EngineSlot {
        Arc::clone(&self.engine)
    }

    fn engine(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(e) => Arc::clone(&e),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The configuration version tickets and handles are issued under.
    fn version(&self) -> String {
        self.engine().catalog().version.clone()
    }

    /// The principal behind the request: a bearer token from the handshake, an API key in
    /// `x-api-key`, or, without either, the anonymous principal where the security catalog
    /// grants it anything.
    ///
    /// Admits the request only while its source is within its audit budget and the audit
    /// log can be written.
    fn principal(&self, metadata: &MetadataMap) -> Result<Arc<Principal>> {
        let principal = self.resolve_principal(metadata)?;
        audit::note_principal(&principal.id, &principal.roles, true);
        admit()?;
        Ok(principal)
    }

    fn resolve_principal(&self, metadata: &MetadataMap) -> Result<Arc<Principal>> {
        if let Some(key) = metadata.get("x-api-key") {
            let key = key.to_str().map_err(|_| Error::BadCredentials)?;
            return self
                .engine()
                .catalog()
                .security
                .authenticate_api_key(key.trim())
                .map_err(|_| Error::BadCredentials);
        }
        let Some(header) = metadata.get("authorization") else {
            return self
                .engine()
                .catalog()
                .security
                .anonymous()
                .ok_or(Error::NoCredentials);
        };
        let value = header.to_str().map_err(|_| Error::BadToken)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(Error::NoCredentials)?;
        let claims = self
            .signer
            .verify_text(token.trim(), Kind::Session)
            .ok_or(Error::BadToken)?;
        // A principal removed from security.toml loses access at once.
        self.engine()
            .catalog()
            .security
            .principal(&claims.sub)
            .ok_or(Error::BadToken)
    }

    async fn login(&self, user: String, password: String) -> Result<(Arc<Principal>, String)> {
        if user.len() > MAX_CREDENTIAL_BYTES || password.len() > MAX_CREDENTIAL_BYTES {
            return Err(Error::BadCredentials);
        }
        let engine = self.engine();
        let busy = || Error::Busy {
            running: self.logins.threads(),
            whose: "logins",
            waited_secs: self.settings.queue_timeout.as_secs(),
        };
        let principal = self
            .logins
            .check(
                move || engine.catalog().security.authenticate(&user, &password),
                self.settings.queue_timeout,
            )
            .await
            .map_err(|e| match e {
                NotChecked::Busy => busy(),
                NotChecked::Lost => Error::Internal("a login thread stopped".into()),
            })?
            .map_err(|_| Error::BadCredentials)?;
        let token = self.signer.sign_text(&Claims::new(
            Kind::Session,
            &principal.id,
            self.settings.session_ttl,
        ));
        Ok((principal, token))
    }

    /// Plans a statement for the FlightInfo and signs a ticket that lets DoGet run it.
    async fn statement_info(
        &self,
        principal: &Principal,
        sql: String,
        params: Option<String>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo> {
        audit::note_statement(&sql);
        let batch = params.as_deref().map(decode_params).transpose()?;
        let engine = self.engine();
        let _permit = self.limiter.acquire(principal).await?;
        let deadline = Instant::now() + self.query_timeout(principal);
        let (schema, touched) = self
            .plan(principal, &sql, batch, deadline, |p| (p.schema, p.touched))
            .await?;
        audit::note_touched(
            touched.datasets.into_iter().collect(),
            touched.policies.into_iter().collect(),
        );
        let mut claims = Claims::new(Kind::Ticket, &principal.id, self.settings.ticket_ttl);
        claims.pv = Some(engine.catalog().version.clone());
        claims.sql = Some(sql);
        claims.params = params;
        claims.qid = Some(new_request_id());
        let handle = self.signer.sign_binary(&claims);
        let ticket = TicketStatementQuery {
            statement_handle: handle.into(),
        }
        .as_any()
        .encode_to_vec();
        flight_info(&schema, ticket, descriptor)
    }

    /// The time limit of a principal's queries.
    fn query_timeout(&self, principal: &Principal) -> Duration {
        if principal.is_anonymous() {
            self.settings.anonymous_query_timeout
        } else {
            self.settings.query_timeout
        }
    }

    /// The end of planning for a query that must end by `deadline`.
    fn planning_deadline(&self, deadline: Instant) -> Instant {
        deadline.min(Instant::now() + self.settings.planning_timeout)
    }

    /// Runs planning work on the principal's executor until the planning deadline of a
    /// query that must end by `deadline`.
    async fn on_executor<T, F>(
        &self,
        principal: &Principal,
        deadline: Instant,
        work: impl FnOnce(Arc<Engine>, Instant) -> F,
    ) -> Result<T>
    where
        F: std::future::Future<Output = bund_planner::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let until = self.planning_deadline(deadline);
        match self
            .executors
            .of(principal)
            .run(work(self.engine(), until), until)
            .await
        {
            Ok(done) => Ok(done?),
            Err(stopped) => Err(planning_stopped(stopped)),
        }
    }

    /// Plans a statement on the principal's executor, under the planning deadline, and
    /// returns what `keep` takes of the plan there. (A plan is dropped where it was made:
    /// dropping a deep expression tree recurses as deeply as planning it did.)
    async fn plan<T: Send + 'static>(
        &self,
        principal: &Principal,
        sql: &str,
        params: Option<RecordBatch>,
        deadline: Instant,
        keep: impl FnOnce(PlannedQuery) -> T + Send + 'static,
    ) -> Result<T> {
        let who = Arc::new(principal.clone());
        let text = sql.to_string();
        self.on_executor(principal, deadline, |engine, until| async move {
            engine
                .plan_until(&who, &text, params.as_ref(), Some(until))
                .await
                .map(keep)
        })
        .await
    }

    /// GetFlightInfo of a metadata command: the ticket is the command itself (it carries
    /// nothing secret; DoGet authenticates again).
    async fn metadata_info(
        &self,
        method: &'static str,
        request: Request<FlightDescriptor>,
        schema: &Schema,
        command: Any,
    ) -> Result<Response<FlightInfo>, Status> {
        let rid = new_request_id();
        let client = peer(&request);
        let fut = async {
            self.principal(request.metadata())?;
            flight_info(schema, command.encode_to_vec(), request.into_inner()).map(Response::new)
        };
        traced(method, client, fut, &rid).await
    }

    /// DoGet of a metadata command: one batch, built once the caller is authenticated.
    async fn metadata_get(
        &self,
        method: &'static str,
        request: Request<Ticket>,
        build: impl FnOnce(&Self, &Principal) -> Result<(SchemaRef, RecordBatch)> + Send,
    ) -> Result<Response<FlightDataStream>, Status> {
        let rid = new_request_id();
        let client = peer(&request);
        let fut = async {
            let principal = self.principal(request.metadata())?;
            let (schema, batch) = build(self, &principal)?;
            Ok(Response::new(batch_stream(schema, batch)))
        };
        traced(method, client, fut, &rid).await
    }

    /// The datasets visible to the principal, with the columns it may see.
    fn tables_batch(
        &self,
        principal: &Principal,
        query: CommandGetTables,
    ) -> Result<(SchemaRef, RecordBatch)> {
        let mut builder: GetTablesBuilder = query.into_builder();
        let access = self.engine().access(principal)?;
        for v in &access.datasets {
            let d = &v.dataset;
            let table_type = match d.kind {
                DatasetKind::Table => "TABLE",
                DatasetKind::Topic | DatasetKind::Open => "VIEW",
            };
            let schema = &v.schema;
            let fields: Vec<_> = schema
                .fields()
                .iter()
                .map(|f| {
                    f.as_ref()
                        .clone()
                        .with_data_type(bund_planner::client_type(f.data_type()))
                })
                .collect();
            builder.append(
                BUND_CATALOG,
                &d.schema,
                &d.name,
                table_type,
                &Schema::new(fields),
            )?;
        }
        Ok((builder.schema(), builder.build().map_err(bad_pattern)?))
    }

    fn schemas_batch(
        &self,
        principal: &Principal,
        query: CommandGetDbSchemas,
    ) -> Result<(SchemaRef, RecordBatch)> {
        let mut builder: GetDbSchemasBuilder = query.into_builder();
        for name in self.engine().access(principal)?.schema_names() {
            builder.append(BUND_CATALOG, name);
        }
        Ok((builder.schema(), builder.build().map_err(bad_pattern)?))
    }

    fn cancel(&self, info: &FlightInfo, principal: &Principal) -> CancelStatus {
        let mut status = CancelStatus::NotCancellable;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else {
                continue;
            };
            let Ok(any) = Any::decode(ticket.ticket.clone()) else {
                continue;
            };
            let Ok(Some(t)) = any.unpack::<TicketStatementQuery>() else {
                continue;
            };
            let Ok(claims) = self.signer.open(
                &t.statement_handle,
                Kind::Ticket,
                &principal.id,
                &self.version(),
            ) else {
                continue;
            };
            if let Some(qid) = claims.qid
                && self.running.cancel(&qid)
            {
                status = CancelStatus::Cancelled;
            }
        }
        status
    }
}

type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl FlightSqlService for BundService {
    type FlightService = BundService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        let rid = new_request_id();
        let client = peer(&request);
        let fut = async {
            let header = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let (user, password) = match header.as_deref().and_then(|h| {
                h.strip_prefix("Basic ")
                    .or_else(|| h.strip_prefix("basic "))
            }) {
                Some(encoded) => parse_basic(encoded).ok_or(Error::BadCredentials)?,
                None => {
                    // Older clients put BasicAuth in the handshake payload instead of a header.
                    let mut stream = request.into_inner();
                    let first = stream
                        .next()
                        .await
                        .ok_or(Error::NoCredentials)?
                        .map_err(|e| Error::BadRequest(e.message().to_string()))?;
                    let basic = arrow_flight::BasicAuth::decode(first.payload)
                        .map_err(|_| Error::NoCredentials)?;
                    if basic.username.is_empty() {
                        return Err(Error::NoCredentials);
                    }
                    (basic.username, basic.password)
                }
            };
            audit::note_principal(&user, &[], false);
            admit()?;
            let (principal, token) = self.login(user, password).await?;
            audit::note_principal(&principal.id, &principal.roles, true);
            tracing::info!(principal = %principal.id, "logged in");
            let response = HandshakeResponse {
                protocol_version: 0,
                payload: token.clone().into_bytes().into(),
            };
            let stream: HandshakeStream = Box::pin(futures::stream::iter([Ok(response)]));
            let mut resp = Response::new(stream);
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| Error::Internal("token is not a valid header".into()))?;
            resp.metadata_mut().insert("authorization", value);
            Ok(resp)
        };
        traced("Handshake", client, fut, &rid).await
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let rid = new_request_id();
        let client = peer(&request);
        let fut = async {
            let principal = self.principal(request.metadata())?;
            tracing::info!(principal = %principal.id, sql = %query.query, "statement");
            self.statement_info(&principal, query.query, None, request.into_inner())
                .await
                .map(Response::new)
        };
        traced("GetFlightInfo(Statement)", client, fut, &rid).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let rid = new_request_id();
        let client = peer(&request);
        let fut = async {
            let principal = self.principal(request.metadata())?;
            let mut handle = cmd.prepared_statement_handle.to_vec();
            if let Some(bound) = self
                .bound
                .lock()
                .ok()
                .and_then(|b| b.by_handle.get(&handle).cloned())
            {
                handle = bound;
            }
            let claims =
                self.signer
                    .open(&handle, Kind::Prepared, &principal.id, &self.version())?;
            let sql = claims.sql.ok_or(Error::BadHandle {
                what: "prepared statement handle",
                hint: "prepare the statement again",
            })?;
            tracing::info!(principal = %principal.id, sql = %sql, "prepared statement");
            self.statement_info(&principal, sql, claims.params, request.into_inner())
                .await
                .map(Response::new)
        };
        traced("GetFlightInfo(Prepared)", client, fut, &rid).await
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info("GetFlightInfo(Catalogs)", request, &schema, query.as_any())
            .await
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info("GetFlightInfo(DbSchemas)", request, &schema, query.as_any())
            .await
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info("GetFlightInfo(Tables)", request, &schema, query.as_any())
            .await
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(
            "GetFlightInfo(TableTypes)",
            request,
            &schema,
            query.as_any(),
        )
        .await
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        self.metadata_info("GetFlightInfo(SqlInfo)", request, &schema, query.as_any())
            .await
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&XDBC_TYPES).schema();
        self.metadata_info(
            "GetFlightInfo(XdbcTypeInfo)",
            request,
            &schema,
            query.as_any(),
        )
        .await
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            "GetFlightInfo(PrimaryKeys)",
            request,
            &PRIMARY_KEYS_SCHEMA,
            query.as_any(),
        )
        .await
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            "GetFlightInfo(ExportedKeys)",
            request,
            &FOREIGN_KEYS_SCHEMA,
            query.as_any(),
        )
        .await
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            "GetFlightInfo(ImportedKeys)",
            request,
            &FOREIGN_KEYS_SCHEMA,
            query.as_any(),
        )
        .await
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            "GetFlightInfo(CrossReference)",
            request,
            &FOREIGN_KEYS_SCHEMA,
            query.as_any(),
        )
        .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let rid = new_request_id();
        let client = peer(&request);
        let fut = async {
            let principal = self.principal(request.metadata())?;
            let claims = self.signer.open(
                &ticket.statement_handle,
                Kind::Ticket,
                &principal.id,
                &self.version(),
            )?;
            let sql = claims.sql.ok_or(Error::BadHandle {
                what: "ticket",
                hint: "run the statement again",
            })?;
            audit::note_statement(&sql);
            let params = claims.params.as_deref().map(decode_params).transpose()?;
            let permit = self.limiter.acquire(&principal).await?;
            let timeout = self.query_timeout(&principal);
            let deadline = Instant::now() + timeout;
            let planned = self.plan(&principal, &sql, params, deadline, |p| p).await?;
            tracing::info!(principal = %principal.id, sql = %sql, "query started");
            audit::note_touched(
                planned.touched.datasets.iter().cloned().collect(),
                planned.touched.policies.iter().cloned().collect(),
            );
            let record = audit::context().record(&rid, "DoGet(Statement)");
            audit::note_recorded_elsewhere();
            let run = QueryRun {
                audit: record,
                request_id: rid.clone(),
                qid: claims.qid.unwrap_or_default(),
                principal: principal.id.clone(),
                permit,
                deadline,
                timeout,
            };
            stream_query(planned, run, &self.running, self.executors.of(&principal))
                .map(Response::new)
        };
        traced("DoGet(Statement)", client, fut, &rid).await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(Catalogs)", request, |_, _| {
            let mut builder = query.into_builder();
            builder.append(BUND_CATALOG);
            Ok((builder.schema(), builder.build()?))
        })
        .await
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(DbSchemas)", request, |s, p| {
            s.schemas_batch(p, query)
        })
        .await
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(Tables)", request, |s, p| s.tables_batch(p, query))
            .await
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(TableTypes)", request, |_, _| {
            let mut builder = query.into_builder();
            for t in TABLE_TYPES {
                builder.append(t);
            }
            Ok((builder.schema(), builder.build()?))
        })
        .await
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(SqlInfo)", request, |_, _| {
            let builder = query.into_builder(&SQL_INFO);
            Ok((builder.schema(), builder.build()?))
        })
        .await
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(XdbcTypeInfo)", request, |_, _| {
            let builder = query.into_builder(&XDBC_TYPES);
            Ok((builder.schema(), builder.build()?))
        })
        .await
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(PrimaryKeys)", request, |_, _| {
            Ok(empty(&PRIMARY_KEYS_SCHEMA))
        })
        .await
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(ExportedKeys)", request, |_, _| {
            Ok(empty(&FOREIGN_KEYS_SCHEMA))
        })
        .await
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(ImportedKeys)", request, |_, _| {
            Ok(empty(&FOREIGN_KEYS_SCHEMA))
        })
        .await
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(CrossReference)", request, |_, _| {
            Ok(empty(&FOREIGN_KEYS_SCHEMA))
        })
        .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let rid = new_request_id();
        let client = peer(&request);
        let fut = async {
            let principal = self.principal(request.metadata())?;
            let engine = self.engine();
            audit::note_statement(&query.query);
            let _permit = self.limiter.acquire(&principal).await?;
            let deadline = Instant::now() + self.query_timeout(&principal);
            let (who, text) = (Arc::clone(&principal), query.query.clone());
            let info = self
                .on_executor(&principal, deadline, |planner, until| async move {
                    planner.prepare_until(&who, &text, Some(until)).await
                })
                .await?;
            let mut claims = Claims::new(Kind::Prepared, &principal.id, self.settings.prepared_ttl);
            claims.pv = Some(engine.catalog().version.clone());
            claims.sql = Some(query.query);
            Ok(ActionCreatePreparedStatementResult {
                prepared_statement_handle: self.signer.sign_binary(&claims).into(),
                dataset_schema: schema_bytes(&info.dataset_schema)?,
                parameter_schema: schema_bytes(&info.parameter_schema)?,
            })
        };
        traced("CreatePreparedStatement", client, fut, &rid).await
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let rid = new_request_id();
        let client = peer(&request);
        let fut = async {
            let principal = self.principal(request.metadata())?;
            let original = cmd.prepared_statement_handle.to_vec();
            let claims =
                self.signer
                    .open(&original, Kind::Prepared, &principal.id, &self.version())?;
            // read no more than the parameters may hold: the messages are counted as
            // they arrive, before they are decoded
            let max = self.settings.max_parameter_bytes;
            let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counted = Arc::clone(&received);
            let data = request.into_inner().map(move |m| {
                let m = m.map_err(|s| FlightError::Tonic(Box::new(s)))?;
                let size = m.data_header.len() + m.data_body.len();
                let n = counted.fetch_add(size, std::sync::atomic::Ordering::Relaxed) + size;
                if n > max {
                    return Err(FlightError::ExternalError(Box::new(TooLarge)));
                }
                Ok(m)
            });
            let too_large = || {
                Error::Planner(bund_planner::Error::Parameters {
                    message: format!(
                        "the bound values take more than {} KiB (max_parameter_kb)",
                        max / 1024
                    ),
                })
            };
            let mut stream = FlightRecordBatchStream::new_from_flight_data(data);
            let mut batches: Vec<RecordBatch> = Vec::new();
            loop {
                match stream.try_next().await {
                    Ok(Some(b)) if b.num_rows() > 0 => batches.push(b),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) if received.load(std::sync::atomic::Ordering::Relaxed) > max => {
                        return Err(too_large());
                    }
                    Err(e) => {
                        return Err(Error::BadRequest(format!(
                            "cannot read the bound parameters: {e}"
                        )));
                    }
                }
            }
            let [batch] = batches.as_slice() else {
                return Err(Error::Planner(bund_planner::Error::Parameters {
                    message: format!(
                        "bind exactly one row of values, got {} batches",
                        batches.len()
                    ),
                }));
            };
            let mut bound = claims.clone();
            bound.params = Some(encode_params(batch)?);
            let handle = self.signer.sign_binary(&bound);
            if let Ok(mut b) = self.bound.lock() {
                b.insert(original, handle.clone());
            }
            Ok(DoPutPreparedStatementResult {
                prepared_statement_handle: Some(handle.into()),
            })
        };
        traced("DoPut(PreparedStatementQuery)", client, fut, &rid).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let rid = new_request_id();
        let client = peer(&request);
        let fut = async {
            let principal = self.principal(request.metadata())?;
            let handle = query.prepared_statement_handle.to_vec();
            self.signer
                .open(&handle, Kind::Prepared, &principal.id, &self.version())?;
            if let Ok(mut b) = self.bound.lock() {
                b.forget(&handle);
                b.order.retain(|h| h != &handle);
            }
            Ok(())
        };
        traced("ClosePreparedStatement", client, fut, &rid).await
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let rid = new_request_id();
        let client = peer(&request);
        let fut = async {
            let principal = self.principal(request.metadata())?;
            let info =
                FlightInfo::decode(query.info).map_err(|e| Error::BadRequest(e.to_string()))?;
            let result = match self.cancel(&info, &principal) {
                CancelStatus::Cancelled => 1,
                _ => 3,
            };
            Ok(ActionCancelQueryResult { result })
        };
        traced("CancelQuery", client, fut, &rid).await
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<
        Response<<Self as arrow_flight::flight_service_server::FlightService>::DoActionStream>,
        Status,
    > {
        let rid = new_request_id();
        let client = peer(&request);
        let fut = async {
            let principal = self.principal(request.metadata())?;
            if request.get_ref().r#type == "CloseSession" {
                // Sessions are signed tokens that expire on their own: nothing to close.
                // CloseSessionResult { status: CLOSED }, encoded by hand (arrow-flight 59
                // has no type for it).
                let out: <Self as arrow_flight::flight_service_server::FlightService>::DoActionStream =
                    Box::pin(futures::stream::iter([Ok(arrow_flight::Result {
                        body: bytes::Bytes::from_static(&[0x08, 0x01]),
                    })]));
                return Ok(Response::new(out));
            }
            if request.get_ref().r#type != "CancelFlightInfo" {
                return Err(Error::Unsupported("this action"));
            }
            let req = CancelFlightInfoRequest::decode(request.get_ref().body.clone())
                .map_err(|e| Error::BadRequest(e.to_string()))?;
            let info = req
                .info
                .ok_or_else(|| Error::BadRequest("CancelFlightInfo without a FlightInfo".into()))?;
            let status = self.cancel(&info, &principal);
            tracing::info!(principal = %principal.id, ?status, "cancel requested");
            let body = CancelFlightInfoResult {
                status: status as i32,
            }
            .encode_to_vec();
            let out: <Self as arrow_flight::flight_service_server::FlightService>::DoActionStream =
                Box::pin(futures::stream::iter([Ok(arrow_flight::Result {
                    body: body.into(),
                })]));
            Ok(Response::new(out))
        };
        traced("DoAction", client, fut, &rid).await
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
