//! Bund's Flight SQL service. Every RPC enters through one of two doors in this file:
//! [`BundService::serve`], which takes one snapshot of the engine, resolves the principal
//! (`session.rs`), admits the request against the audit budgets and runs the RPC's body
//! with both in a [`Call`]; and [`BundService::serve_login`] for the handshake, which has
//! no principal yet. Each body then works only with what its `Call` holds, so a reload
//! between two steps of one request cannot check a ticket under one configuration and plan
//! under the next. The RPCs are grouped by family: `session.rs` (handshake, principals),
//! `statements.rs` (statements, tickets, DoGet, cancellation) with `planned.rs` (plans kept
//! from GetFlightInfo for their DoGet), `prepared.rs` (prepared statements and their bound
//! parameters), `catalog.rs` (metadata: catalogs, schemas,
//! tables, SQL info).

mod catalog;
mod planned;
mod prepared;
mod session;
mod statements;

use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandStatementQuery,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use bund_catalogs::{BUND_CATALOG, Principal};
use bund_planner::Engine;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use futures::{Stream, TryStreamExt};
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::audit::{self, AuditLog, Outcome};
use crate::error::{Error, Result, audit_text, status};
use crate::executor::Executors;
use crate::logins::{Logins, Verified};
use crate::metadata::{FOREIGN_KEYS_SCHEMA, PRIMARY_KEYS_SCHEMA, SQL_INFO, XDBC_TYPES};
use crate::query::{FlightDataStream, Limiter, Running};
use crate::settings::ServerSettings;
use crate::tokens::Signer;

/// The engine of the current configuration; a reload replaces it, requests already under
/// way keep the one they started with.
pub(crate) type EngineSlot = Arc<RwLock<Arc<Engine>>>;

pub(crate) struct BundService {
    engine: EngineSlot,
    executors: Arc<Executors>,
    signer: Signer,
    settings: ServerSettings,
    limiter: Limiter,
    running: Arc<Running>,
    bound: Mutex<prepared::BoundHandles>,
    /// Plans made by GetFlightInfo, waiting for their DoGet.
    planned: planned::Planned,
    /// The threads that check passwords.
    logins: Logins,
    /// Logins that passed the check recently.
    verified: Verified,
    /// This server's audit log.
    audit: AuditLog,
}

/// One request as its RPC's body sees it: its id, the engine of the configuration it runs
/// under (taken once, when the request arrived) and its principal (resolved once, from
/// that configuration).
pub(crate) struct Call {
    pub(crate) id: String,
    pub(crate) engine: Arc<Engine>,
    pub(crate) principal: Arc<Principal>,
}

impl Call {
    /// The configuration version tickets and handles are issued and checked under.
    fn version(&self) -> &str {
        &self.engine.catalog().version
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
    log: &AuditLog,
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
                log.append(ctx.record(request_id, method));
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
                Code::Unauthenticated | Code::PermissionDenied | Code::NotFound => Outcome::Refused,
                Code::ResourceExhausted => Outcome::Busy,
                Code::DeadlineExceeded => Outcome::Timeout,
                Code::Cancelled => Outcome::Cancelled,
                _ => Outcome::Error,
            };
            record.code = Some(format!("{:?}", status.code()));
            record.set_error(&match &e {
                // a failure while running may quote a value from a row
                Error::Planner(bund_planner::Error::Execution(df)) => audit_text(df),
                _ => status.message().to_string(),
            });
            log.append(record);
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

impl BundService {
    pub(crate) fn new(
        engine: Arc<Engine>,
        settings: ServerSettings,
        signer: Signer,
        executors: Arc<Executors>,
        logins: Logins,
        audit: AuditLog,
    ) -> Self {
        Self {
            logins,
            verified: Verified::new(settings.login_cache),
            audit,
            limiter: Limiter::new(&settings),
            executors,
            engine: Arc::new(RwLock::new(engine)),
            signer,
            settings,
            running: Arc::new(Running::default()),
            bound: Mutex::new(prepared::BoundHandles::default()),
            planned: planned::Planned::default(),
        }
    }

    /// Whether the current request's source may go on (see `audit`).
    fn admit(&self) -> Result<()> {
        self.audit
            .admit(&audit::context().source())
            .map_err(|r| match r {
                audit::Refusal::Unwritable => Error::AuditUnwritable,
                audit::Refusal::Budget { retry_after_secs } => {
                    Error::RateLimited { retry_after_secs }
                }
            })
    }

    /// This server's audit log (flushed at shutdown).
    pub(crate) fn audit_log(&self) -> AuditLog {
        self.audit.clone()
    }

    /// The slot the reloader swaps new engines into.
    pub(crate) fn engine_slot(&self) -> EngineSlot {
        Arc::clone(&self.engine)
    }

    /// The engine of the configuration now: taken once per request, by the two doors below.
    fn snapshot(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(e) => Arc::clone(&e),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The door of every RPC but the handshake: a request id, one engine snapshot, the
    /// principal resolved from it and admitted (see `session.rs`), then `body`; its error is
    /// mapped to a status and the request audited (`traced`).
    async fn serve<R, T, F, Fut>(
        &self,
        method: &'static str,
        request: Request<R>,
        body: F,
    ) -> Result<T, Status>
    where
        F: FnOnce(Call, Request<R>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let id = new_request_id();
        let client = peer(&request);
        let fut = async {
            let engine = self.snapshot();
            let principal = self.principal(&engine, request.metadata())?;
            let call = Call {
                id: id.clone(),
                engine,
                principal,
            };
            body(call, request).await
        };
        traced(&self.audit, method, client, fut, &id).await
    }

    /// The handshake's door: like [`Self::serve`], without a principal to resolve (the
    /// handshake establishes it).
    async fn serve_login<R, T, F, Fut>(
        &self,
        method: &'static str,
        request: Request<R>,
        body: F,
    ) -> Result<T, Status>
    where
        F: FnOnce(Arc<Engine>, Request<R>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let id = new_request_id();
        let client = peer(&request);
        let fut = async { body(self.snapshot(), request).await };
        traced(&self.audit, method, client, fut, &id).await
    }
}

type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;
type ActionStream =
    <BundService as arrow_flight::flight_service_server::FlightService>::DoActionStream;

/// Every RPC of Flight SQL that Bund serves, each through one of the two doors; the others
/// keep the trait's default (Unimplemented, before anything is read).
#[tonic::async_trait]
impl FlightSqlService for BundService {
    type FlightService = BundService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        self.serve_login("Handshake", request, |engine, request| {
            self.handshake(engine, request)
        })
        .await
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.serve("GetFlightInfo(Statement)", request, |call, request| {
            self.statement_flight_info(call, query.query, request)
        })
        .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.serve("GetFlightInfo(Prepared)", request, |call, request| {
            self.prepared_flight_info(call, cmd, request)
        })
        .await
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
        self.serve("DoGet(Statement)", request, |call, _| {
            self.run_ticket(call, ticket)
        })
        .await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(Catalogs)", request, |_| {
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
        self.metadata_get("DoGet(DbSchemas)", request, |call| {
            catalog::schemas_batch(call, query)
        })
        .await
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(Tables)", request, |call| {
            catalog::tables_batch(call, query)
        })
        .await
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(TableTypes)", request, |_| {
            let mut builder = query.into_builder();
            for t in catalog::TABLE_TYPES {
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
        self.metadata_get("DoGet(SqlInfo)", request, |_| {
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
        self.metadata_get("DoGet(XdbcTypeInfo)", request, |_| {
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
        self.metadata_get("DoGet(PrimaryKeys)", request, |_| {
            Ok(catalog::empty(&PRIMARY_KEYS_SCHEMA))
        })
        .await
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(ExportedKeys)", request, |_| {
            Ok(catalog::empty(&FOREIGN_KEYS_SCHEMA))
        })
        .await
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(ImportedKeys)", request, |_| {
            Ok(catalog::empty(&FOREIGN_KEYS_SCHEMA))
        })
        .await
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.metadata_get("DoGet(CrossReference)", request, |_| {
            Ok(catalog::empty(&FOREIGN_KEYS_SCHEMA))
        })
        .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.serve("CreatePreparedStatement", request, |call, _| {
            self.create_prepared(call, query.query)
        })
        .await
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.serve("DoPut(PreparedStatementQuery)", request, |call, request| {
            self.bind_parameters(call, cmd, request)
        })
        .await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.serve("ClosePreparedStatement", request, |call, _| async move {
            self.close_prepared(&call, &query.prepared_statement_handle)
        })
        .await
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        self.serve("CancelQuery", request, |call, _| async move {
            self.cancel_query(&call, query)
        })
        .await
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<ActionStream>, Status> {
        self.serve("DoAction", request, |call, request| async move {
            self.other_action(&call, request.into_inner())
        })
        .await
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
