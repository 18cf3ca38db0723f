//! Metadata: catalogs, schemas, tables (with the columns the principal may see), table
//! types, SQL info, type info, and the (empty) keys. A metadata command's ticket is the
//! command itself: it carries nothing secret, and DoGet authenticates again.

use std::sync::Arc;

use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{GetDbSchemasBuilder, GetTablesBuilder};
use arrow_flight::sql::{Any, CommandGetDbSchemas, CommandGetTables};
use arrow_flight::{FlightDescriptor, FlightInfo, Ticket};
use bund_catalogs::{BUND_CATALOG, DatasetKind};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use prost::Message;
use tonic::{Request, Response, Status};

use super::{BundService, Call, batch_stream, flight_info};
use crate::error::{Error, Result};
use crate::query::FlightDataStream;

/// Table types Bund reports.
pub(super) const TABLE_TYPES: &[&str] = &["TABLE", "VIEW"];

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

/// An empty result with the given schema (Bund declares no keys).
pub(super) fn empty(schema: &SchemaRef) -> (SchemaRef, RecordBatch) {
    (
        Arc::clone(schema),
        RecordBatch::new_empty(Arc::clone(schema)),
    )
}

impl BundService {
    /// GetFlightInfo of a metadata command.
    pub(super) async fn metadata_info(
        &self,
        method: &'static str,
        request: Request<FlightDescriptor>,
        schema: &Schema,
        command: Any,
    ) -> Result<Response<FlightInfo>, Status> {
        self.serve(method, request, |_, request| async move {
            flight_info(schema, command.encode_to_vec(), request.into_inner()).map(Response::new)
        })
        .await
    }

    /// DoGet of a metadata command: one batch, built for the caller.
    pub(super) async fn metadata_get(
        &self,
        method: &'static str,
        request: Request<Ticket>,
        build: impl FnOnce(&Call) -> Result<(SchemaRef, RecordBatch)> + Send,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.serve(method, request, |call, _| async move {
            let (schema, batch) = build(&call)?;
            Ok(Response::new(batch_stream(schema, batch)))
        })
        .await
    }
}

/// The datasets visible to the principal, with the columns it may see.
pub(super) fn tables_batch(
    call: &Call,
    query: CommandGetTables,
) -> Result<(SchemaRef, RecordBatch)> {
    let mut builder: GetTablesBuilder = query.into_builder();
    let access = call.engine.access(&call.principal)?;
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

pub(super) fn schemas_batch(
    call: &Call,
    query: CommandGetDbSchemas,
) -> Result<(SchemaRef, RecordBatch)> {
    let mut builder: GetDbSchemasBuilder = query.into_builder();
    for name in call.engine.access(&call.principal)?.schema_names() {
        builder.append(BUND_CATALOG, name);
    }
    Ok((builder.schema(), builder.build().map_err(bad_pattern)?))
}
