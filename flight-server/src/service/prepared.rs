//! Prepared statements. A handle is signed and carries its statement (and, once bound, its
//! parameters), so any process holding the signing key can serve it. DoPut with bound
//! parameters returns the updated handle, as Flight SQL allows; for clients that keep
//! sending the original handle, the binding is also kept here, per process, by original
//! handle (`BoundHandles`), and its use is logged. None of the clients tested here needs
//! it: the Flight SQL JDBC driver 18.3.0, the ADBC Flight SQL driver 1.13 and arrow-flight's
//! client all send the updated handle (no use was logged in the end-to-end tests of
//! `clients.rs` and `flight.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{
    ActionCreatePreparedStatementResult, CommandPreparedStatementQuery,
    DoPutPreparedStatementResult,
};
use arrow_flight::{FlightDescriptor, FlightInfo};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use futures::{StreamExt, TryStreamExt};
use tonic::{Request, Response};

use super::{BundService, Call, schema_bytes};
use crate::audit;
use crate::error::{Error, Result};
use crate::tokens::Kind;

/// Prepared handles whose parameters were bound, kept for clients that ignore the updated
/// handle of DoPutPreparedStatementResult: at most this many bytes of handles (each holds
/// its statement and its parameters); the oldest binding is dropped first.
const MAX_BOUND_BYTES: usize = 64 << 20;
#[derive(Default)]
pub(super) struct BoundHandles {
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

/// Bound parameters past `max_parameter_kb`.
#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bound parameters too large")
    }
}

impl std::error::Error for TooLarge {}

pub(super) fn encode_params(batch: &RecordBatch) -> Result<String> {
    let mut buf = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut buf, batch.schema_ref())?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(STANDARD.encode(buf))
}

pub(super) fn decode_params(encoded: &str) -> Result<RecordBatch> {
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

impl BundService {
    /// GetFlightInfo of a prepared statement: its handle (or the handle its parameters were
    /// bound to) opened, and the statement planned as any other.
    pub(super) async fn prepared_flight_info(
        &self,
        call: Call,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>> {
        let original = &cmd.prepared_statement_handle[..];
        let kept = self
            .bound
            .lock()
            .ok()
            .and_then(|b| b.by_handle.get(original).cloned());
        let claims = self.signer.open(
            kept.as_deref().unwrap_or(original),
            Kind::Prepared,
            &call.principal.id,
            call.version(),
        )?;
        if kept.is_some() {
            // logged once the handle is known to be the caller's
            tracing::info!(
                principal = %call.principal.id,
                "the client sent the original handle of a statement it bound: the binding kept by this process is used"
            );
        }
        let sql = claims.sql.ok_or(Error::BadHandle {
            what: "prepared statement handle",
            hint: "prepare the statement again",
        })?;
        tracing::info!(principal = %call.principal.id, sql = %sql, "prepared statement");
        self.statement_info(&call, sql, claims.params, request.into_inner())
            .await
            .map(Response::new)
    }

    /// CreatePreparedStatement: planned for its schemas, and a handle signed.
    pub(super) async fn create_prepared(
        &self,
        call: Call,
        query: String,
    ) -> Result<ActionCreatePreparedStatementResult> {
        audit::note_statement(&query);
        let principal = &call.principal;
        let _permit = self.limiter.acquire(principal).await?;
        let deadline = Instant::now() + self.query_timeout(principal);
        let (who, text) = (Arc::clone(principal), query.clone());
        let info = self
            .on_executor(&call, deadline, |planner, until| async move {
                planner.prepare_until(&who, &text, Some(until)).await
            })
            .await?;
        let mut claims =
            self.signer
                .claims(Kind::Prepared, &principal.id, self.settings.prepared_ttl);
        claims.pv = Some(call.version().to_string());
        claims.sql = Some(query);
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: self.signer.sign_binary(&claims).into(),
            dataset_schema: schema_bytes(&info.dataset_schema)?,
            parameter_schema: schema_bytes(&info.parameter_schema)?,
        })
    }

    /// DoPut of parameters: one row of values, counted as it arrives, signed into an updated
    /// handle.
    pub(super) async fn bind_parameters(
        &self,
        call: Call,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult> {
        let original = cmd.prepared_statement_handle.to_vec();
        let claims = self.signer.open(
            &original,
            Kind::Prepared,
            &call.principal.id,
            call.version(),
        )?;
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
        let mut bound = claims;
        bound.params = Some(encode_params(batch)?);
        let handle = self.signer.sign_binary(&bound);
        if let Ok(mut b) = self.bound.lock() {
            b.insert(original, handle.clone());
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.into()),
        })
    }

    /// ClosePreparedStatement: forgets its binding here.
    pub(super) fn close_prepared(&self, call: &Call, handle: &[u8]) -> Result<()> {
        self.signer
            .open(handle, Kind::Prepared, &call.principal.id, call.version())?;
        if let Ok(mut b) = self.bound.lock() {
            b.forget(handle);
            b.order.retain(|h| h != handle);
        }
        Ok(())
    }
}
