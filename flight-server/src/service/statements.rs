//! Statements: GetFlightInfo plans a statement (or a bound prepared statement) under the
//! caller's identity and signs a ticket that carries it; DoGet verifies the ticket, takes
//! the plan GetFlightInfo kept (or plans the statement again) and streams the batches as
//! they are produced, under one deadline; and cancellation of a ticket's query by
//! CancelFlightInfo or CancelQuery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::sql::ProstMessageExt;
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, Any, TicketStatementQuery,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightDescriptor,
    FlightInfo,
};
use bund_catalogs::Principal;
use bund_planner::{Engine, PlannedQuery};
use datafusion::arrow::array::RecordBatch;
use prost::Message;
use tonic::{Request, Response};

use super::planned::{BYTES_PER_OPERATOR, Owner};
use super::prepared::decode_params;
use super::{ActionStream, BundService, Call, flight_info, new_request_id};
use crate::audit;
use crate::error::{Error, Result};
use crate::executor::Stopped;
use crate::query::{FlightDataStream, QueryRun, stream_query};
use crate::tokens::Kind;

/// The error of planning that produced no plan on its executor.
fn planning_stopped(stopped: Stopped) -> Error {
    match stopped {
        Stopped::Deadline => Error::Planner(bund_planner::Error::Timeout),
        Stopped::Panicked(message) => Error::Internal(format!("planning panicked: {message}")),
    }
}

/// The operators of a physical plan, counted without recursion (plans may be deep).
fn operators(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> usize {
    let mut stack = vec![Arc::clone(plan)];
    let mut n = 0;
    while let Some(p) = stack.pop() {
        n += 1;
        stack.extend(p.children().into_iter().cloned());
    }
    n
}

/// An action's answer of one result.
fn one_result(body: bytes::Bytes) -> Response<ActionStream> {
    let out: ActionStream = Box::pin(futures::stream::iter([Ok(arrow_flight::Result { body })]));
    Response::new(out)
}

impl BundService {
    /// GetFlightInfo of a statement.
    pub(super) async fn statement_flight_info(
        &self,
        call: Call,
        sql: String,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>> {
        tracing::info!(principal = %call.principal.id, sql = %sql, "statement");
        self.statement_info(&call, sql, None, request.into_inner())
            .await
            .map(Response::new)
    }

    /// Plans a statement for the FlightInfo and signs a ticket that lets DoGet run it.
    pub(super) async fn statement_info(
        &self,
        call: &Call,
        sql: String,
        params: Option<String>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo> {
        audit::note_statement(&sql);
        let batch = params.as_deref().map(decode_params).transpose()?;
        let principal = &call.principal;
        let _permit = self.limiter.acquire(principal).await?;
        let deadline = Instant::now() + self.query_timeout(principal);
        let planned = self.plan(call, &sql, batch, deadline, |p| p).await?;
        let schema = Arc::clone(&planned.schema);
        audit::note_touched(
            planned.touched.datasets.iter().cloned().collect(),
            planned.touched.policies.iter().cloned().collect(),
        );
        let qid = new_request_id();
        let weight = sql.len()
            + params.as_ref().map_or(0, String::len)
            + BYTES_PER_OPERATOR * operators(&planned.physical);
        let mut claims = self
            .signer
            .claims(Kind::Ticket, &principal.id, self.settings.ticket_ttl);
        claims.pv = Some(call.version().to_string());
        claims.sql = Some(sql);
        claims.params = params;
        claims.qid = Some(qid.clone());
        let handle = self.signer.sign_binary(&claims);
        let owner = Owner {
            qid: &qid,
            principal: &principal.id,
            version: call.version(),
        };
        let pushed_out = self.planned.keep(&owner, weight, planned);
        self.drop_plans(call, pushed_out);
        let ticket = TicketStatementQuery {
            statement_handle: handle.into(),
        }
        .as_any()
        .encode_to_vec();
        flight_info(&schema, ticket, descriptor)
    }

    /// The time limit of a principal's queries.
    pub(super) fn query_timeout(&self, principal: &Principal) -> Duration {
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
    pub(super) async fn on_executor<T, F>(
        &self,
        call: &Call,
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
            .of(&call.principal)
            .run(work(Arc::clone(&call.engine), until), until)
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
        call: &Call,
        sql: &str,
        params: Option<RecordBatch>,
        deadline: Instant,
        keep: impl FnOnce(PlannedQuery) -> T + Send + 'static,
    ) -> Result<T> {
        let who = Arc::clone(&call.principal);
        let text = sql.to_string();
        self.on_executor(call, deadline, |engine, until| async move {
            engine
                .plan_until(&who, &text, params.as_ref(), Some(until))
                .await
                .map(keep)
        })
        .await
    }

    /// Drops plans on the principal's executor, where plans are dropped (see [`Self::plan`]).
    fn drop_plans(&self, call: &Call, plans: Vec<PlannedQuery>) {
        if !plans.is_empty() {
            let _dropped = self
                .executors
                .of(&call.principal)
                .spawn(async move { drop(plans) });
        }
    }

    /// DoGet of a ticket: the plan its GetFlightInfo made when this process still keeps it
    /// (`planned.rs`), else the statement it carries planned again; then streamed.
    pub(super) async fn run_ticket(
        &self,
        call: Call,
        ticket: TicketStatementQuery,
    ) -> Result<Response<FlightDataStream>> {
        let claims = self.signer.open(
            &ticket.statement_handle,
            Kind::Ticket,
            &call.principal.id,
            call.version(),
        )?;
        let sql = claims.sql.ok_or(Error::BadHandle {
            what: "ticket",
            hint: "run the statement again",
        })?;
        audit::note_statement(&sql);
        let principal = &call.principal;
        let permit = self.limiter.acquire(principal).await?;
        let timeout = self.query_timeout(principal);
        let deadline = Instant::now() + timeout;
        let qid = claims.qid.unwrap_or_default();
        let owner = Owner {
            qid: &qid,
            principal: &principal.id,
            version: call.version(),
        };
        let planned = match self.planned.take(&owner) {
            Some(planned) => planned,
            None => {
                let params = claims.params.as_deref().map(decode_params).transpose()?;
                self.plan(&call, &sql, params, deadline, |p| p).await?
            }
        };
        tracing::info!(principal = %principal.id, sql = %sql, "query started");
        audit::note_touched(
            planned.touched.datasets.iter().cloned().collect(),
            planned.touched.policies.iter().cloned().collect(),
        );
        let record = audit::context().record(&call.id, "DoGet(Statement)");
        audit::note_recorded_elsewhere();
        let run = QueryRun {
            audit: record,
            log: self.audit.clone(),
            request_id: call.id.clone(),
            qid,
            principal: principal.id.clone(),
            permit,
            deadline,
            timeout,
        };
        stream_query(planned, run, &self.running, self.executors.of(principal)).map(Response::new)
    }

    /// CancelQuery (the older action): cancels the query of the FlightInfo's tickets.
    pub(super) fn cancel_query(
        &self,
        call: &Call,
        query: ActionCancelQueryRequest,
    ) -> Result<ActionCancelQueryResult> {
        let info = FlightInfo::decode(query.info).map_err(|e| Error::BadRequest(e.to_string()))?;
        let result = match self.cancel(call, &info) {
            CancelStatus::Cancelled => 1,
            _ => 3,
        };
        Ok(ActionCancelQueryResult { result })
    }

    /// Other actions: CloseSession (nothing to close: sessions are signed tokens) and
    /// CancelFlightInfo.
    pub(super) fn other_action(
        &self,
        call: &Call,
        action: Action,
    ) -> Result<Response<ActionStream>> {
        if action.r#type == "CloseSession" {
            // Sessions are signed tokens that expire on their own: nothing to close.
            // CloseSessionResult { status: CLOSED }, encoded by hand (arrow-flight 59
            // has no type for it).
            return Ok(one_result(bytes::Bytes::from_static(&[0x08, 0x01])));
        }
        if action.r#type != "CancelFlightInfo" {
            return Err(Error::Unsupported("this action"));
        }
        let req = CancelFlightInfoRequest::decode(action.body.clone())
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        let info = req
            .info
            .ok_or_else(|| Error::BadRequest("CancelFlightInfo without a FlightInfo".into()))?;
        let status = self.cancel(call, &info);
        tracing::info!(principal = %call.principal.id, ?status, "cancel requested");
        let body = CancelFlightInfoResult {
            status: status as i32,
        }
        .encode_to_vec();
        Ok(one_result(body.into()))
    }

    fn cancel(&self, call: &Call, info: &FlightInfo) -> CancelStatus {
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
                &call.principal.id,
                call.version(),
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
