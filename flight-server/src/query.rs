//! Running one query: slots from the concurrency limits, the task on a query executor that
//! runs the plan, the stream of Flight data it produces, its time limit, cancellation, and
//! the log line and audit record when it ends.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow_flight::FlightData;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use bund_catalogs::Principal;
use bund_planner::PlannedQuery;
use datafusion::arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::execute_stream;
use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{Code, Status};

use crate::audit::{AuditLog, AuditRecord, Outcome};
use crate::error::{Error, Result, audit_text, datafusion_status};
use crate::executor::Executor;

/// Largest Flight data message: batches are split to stay under it.
const MAX_FLIGHT_DATA_SIZE: usize = 2 * 1024 * 1024;

pub(crate) type FlightDataStream =
    Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// Running queries by ticket id, so that CancelFlightInfo can reach them. A ticket fetched
/// by several DoGets at once shares one token and one entry, counted.
#[derive(Debug, Default)]
pub(crate) struct Running {
    queries: Mutex<HashMap<String, (CancellationToken, usize)>>,
}

impl Running {
    fn register(self: &Arc<Self>, qid: &str) -> RunningGuard {
        let mut queries = self.queries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = queries
            .entry(qid.to_string())
            .or_insert_with(|| (CancellationToken::new(), 0));
        entry.1 += 1;
        RunningGuard {
            running: Arc::clone(self),
            qid: qid.to_string(),
            token: entry.0.clone(),
        }
    }

    /// Cancels a running query; false when no query with that id is running here.
    pub(crate) fn cancel(&self, qid: &str) -> bool {
        let queries = self.queries.lock().unwrap_or_else(|p| p.into_inner());
        match queries.get(qid) {
            Some((token, _)) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

struct RunningGuard {
    running: Arc<Running>,
    qid: String,
    token: CancellationToken,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let mut queries = self
            .running
            .queries
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = queries.get_mut(&self.qid) {
            entry.1 -= 1;
            if entry.1 == 0 {
                queries.remove(&self.qid);
            }
        }
    }
}

/// The concurrency limits: a query holds a slot of its principal's (all requests without
/// credentials share one pool) and one of the server's until its stream ends or is
/// dropped; planning holds them too.
#[derive(Debug)]
pub(crate) struct Limiter {
    global: Arc<Semaphore>,
    max: usize,
    per_principal: usize,
    anonymous: Arc<Semaphore>,
    anonymous_max: usize,
    principals: Mutex<HashMap<String, Arc<Semaphore>>>,
    queue_timeout: Duration,
}

/// Slots held by one query.
#[derive(Debug)]
pub(crate) struct Permit {
    _own: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl Limiter {
    pub(crate) fn new(settings: &crate::settings::ServerSettings) -> Self {
        Self {
            global: Arc::new(Semaphore::new(settings.max_concurrent_queries)),
            max: settings.max_concurrent_queries,
            per_principal: settings.max_queries_per_principal,
            anonymous: Arc::new(Semaphore::new(settings.anonymous_max_queries)),
            anonymous_max: settings.anonymous_max_queries,
            principals: Mutex::new(HashMap::new()),
            queue_timeout: settings.queue_timeout,
        }
    }

    /// Waits up to the queue timeout for a slot of the principal's and one of the server's.
    pub(crate) async fn acquire(&self, principal: &Principal) -> Result<Permit> {
        let (own, own_max, whose) = if principal.is_anonymous() {
            (
                Arc::clone(&self.anonymous),
                self.anonymous_max,
                "requests without credentials",
            )
        } else {
            // one entry per principal of the security catalog that ever ran a query
            let mut map = self.principals.lock().unwrap_or_else(|p| p.into_inner());
            let s = map
                .entry(principal.id.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_principal)));
            (Arc::clone(s), self.per_principal, "this principal")
        };
        let deadline = tokio::time::Instant::now() + self.queue_timeout;
        let take = async |slots: Arc<Semaphore>, running: usize, whose: &'static str| {
            match tokio::time::timeout_at(deadline, slots.acquire_owned()).await {
                Ok(Ok(p)) => Ok(p),
                Ok(Err(_)) => Err(Error::Internal("query limiter closed".into())),
                Err(_) => Err(Error::Busy {
                    running,
                    whose,
                    waited_secs: self.queue_timeout.as_secs(),
                }),
            }
        };
        let own = take(own, own_max, whose).await?;
        let global = take(Arc::clone(&self.global), self.max, "the server").await?;
        Ok(Permit {
            _own: own,
            _global: global,
        })
    }
}

/// Everything a running query stream needs besides its plan.
pub(crate) struct QueryRun {
    /// The audit record, completed and written when the query ends.
    pub(crate) audit: AuditRecord,
    /// Where that record goes.
    pub(crate) log: AuditLog,
    pub(crate) request_id: String,
    pub(crate) qid: String,
    pub(crate) principal: String,
    pub(crate) permit: Permit,
    /// When the query is stopped, whether or not the client reads.
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
}

/// What the task running a query sends to the RPC that streams it.
enum Msg {
    Batch(RecordBatch),
    Failed(DataFusionError),
    /// The plan ran to its end.
    End,
}

/// Starts executing a planned query on `executor` and returns its Flight data as it is
/// produced. The query runs in a task of the executor, which stops it when its deadline
/// passes, when it is cancelled, or when the client goes away, whether or not the client is
/// reading; batches reach the RPC through a channel of two.
pub(crate) fn stream_query(
    planned: PlannedQuery,
    run: QueryRun,
    running: &Arc<Running>,
    executor: &Executor,
) -> Result<FlightDataStream> {
    let schema = Arc::clone(&planned.schema);
    let guard = running.register(&run.qid);
    let (tx, rx) = tokio::sync::mpsc::channel::<Msg>(2);
    let _task = executor.spawn(produce(
        planned,
        tx,
        guard.token.clone(),
        run.deadline,
        tracing::Span::current(),
    ));
    let rows = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&rows);
    let request_id = run.request_id.clone();
    let token = guard.token.clone();
    let deadline = run.deadline;
    let secs = run.timeout.as_secs();
    // a failure's audit text: its kind, not its message (see `error::audit_text`)
    let audit_error: Arc<Mutex<Option<String>>> = Arc::default();
    let noted = Arc::clone(&audit_error);
    let batches = futures::stream::unfold(Some(rx), move |rx| {
        let noted = Arc::clone(&noted);
        let counted = Arc::clone(&counted);
        let request_id = request_id.clone();
        let token = token.clone();
        async move {
            let mut rx = rx?;
            let failed = |error: &Error| {
                Err(FlightError::Tonic(Box::new(crate::error::status(
                    error,
                    &request_id,
                ))))
            };
            match rx.recv().await {
                Some(Msg::Batch(batch)) => {
                    counted.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    Some((Ok(batch), Some(rx)))
                }
                Some(Msg::Failed(e)) => {
                    if let Ok(mut n) = noted.lock() {
                        *n = Some(audit_text(&e));
                    }
                    Some((
                        Err(FlightError::Tonic(Box::new(datafusion_status(
                            &e,
                            &request_id,
                        )))),
                        None,
                    ))
                }
                Some(Msg::End) => None,
                // the task stopped without an end: cancelled, past its deadline, or a bug
                None => {
                    let error = if token.is_cancelled() {
                        Error::Cancelled
                    } else if Instant::now() >= deadline {
                        Error::Timeout { secs }
                    } else {
                        Error::Internal("the query's task stopped without an end".into())
                    };
                    Some((failed(&error), None))
                }
            }
        }
    });
    let encoded = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(MAX_FLIGHT_DATA_SIZE)
        .build(batches);
    let cancelled = guard.token.clone().cancelled_owned();
    Ok(Box::pin(QueryStream {
        inner: Box::pin(encoded),
        deadline: Box::pin(tokio::time::sleep_until(run.deadline.into())),
        cancelled: Box::pin(cancelled),
        timeout: run.timeout,
        _permit: run.permit,
        _guard: guard,
        started: Instant::now(),
        rows,
        bytes: 0,
        request_id: run.request_id,
        principal: run.principal,
        outcome: Outcome::Dropped,
        failure: None,
        audit: Some((run.audit, run.log)),
        audit_error,
        done: false,
    }))
}

/// The task that runs a query on its executor: it executes the plan and sends its batches
/// until the plan ends, fails, is cancelled, passes its deadline, or the receiver is gone.
/// Dropping the plan's stream stops every task DataFusion started for it.
async fn produce(
    planned: PlannedQuery,
    tx: tokio::sync::mpsc::Sender<Msg>,
    cancel: CancellationToken,
    deadline: Instant,
    span: tracing::Span,
) {
    let work = async {
        let mut stream = match execute_stream(planned.physical, planned.task_ctx) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Msg::Failed(e)).await;
                return;
            }
        };
        while let Some(item) = stream.next().await {
            let msg = match item {
                Ok(batch) => Msg::Batch(batch),
                Err(e) => Msg::Failed(e),
            };
            let failed = matches!(msg, Msg::Failed(_));
            if tx.send(msg).await.is_err() || failed {
                return;
            }
        }
        let _ = tx.send(Msg::End).await;
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => tracing::info!(parent: &span, "query cancelled"),
        () = tokio::time::sleep_until(deadline.into()) => {
            tracing::info!(parent: &span, "query stopped at its deadline");
        }
        () = tx.closed() => tracing::debug!(parent: &span, "client went away"),
        () = work => {}
    }
}

struct QueryStream {
    inner: Pin<Box<dyn Stream<Item = Result<FlightData, FlightError>> + Send>>,
    deadline: Pin<Box<Sleep>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    timeout: Duration,
    _permit: Permit,
    _guard: RunningGuard,
    started: Instant,
    rows: Arc<AtomicU64>,
    bytes: u64,
    request_id: String,
    principal: String,
    outcome: Outcome,
    /// The status a failed query ended with.
    failure: Option<(Code, String)>,
    audit: Option<(AuditRecord, AuditLog)>,
    /// The audit text of a failure while running, when there was one.
    audit_error: Arc<Mutex<Option<String>>>,
    done: bool,
}

impl QueryStream {
    fn finish(
        &mut self,
        outcome: Outcome,
        status: Status,
    ) -> Poll<Option<Result<FlightData, Status>>> {
        self.outcome = outcome;
        self.failure = Some((status.code(), status.message().to_string()));
        self.done = true;
        Poll::Ready(Some(Err(status)))
    }
}

impl Stream for QueryStream {
    type Item = Result<FlightData, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.cancelled.as_mut().poll(cx).is_ready() {
            let status = crate::error::status(&Error::Cancelled, &self.request_id);
            return self.finish(Outcome::Cancelled, status);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let secs = self.timeout.as_secs();
            let status = crate::error::status(&Error::Timeout { secs }, &self.request_id);
            return self.finish(Outcome::Timeout, status);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(data))) => {
                self.bytes += (data.data_header.len() + data.data_body.len()) as u64;
                Poll::Ready(Some(Ok(data)))
            }
            Poll::Ready(Some(Err(e))) => {
                let status = match e {
                    FlightError::Tonic(s) => *s,
                    other => {
                        tracing::error!(request_id = %self.request_id, error = %other, "encoding failed");
                        Status::internal(format!("internal error (request id {})", self.request_id))
                    }
                };
                self.finish(Outcome::Error, status)
            }
            Poll::Ready(None) => {
                self.outcome = Outcome::Ok;
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let rows = self.rows.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64().max(1e-9);
        tracing::info!(
            request_id = %self.request_id,
            principal = %self.principal,
            outcome = ?self.outcome,
            rows,
            bytes = self.bytes,
            duration_ms = elapsed.as_millis() as u64,
            rows_per_sec = (rows as f64 / secs) as u64,
            "query finished"
        );
        if let Some((mut record, log)) = self.audit.take() {
            record.rows = Some(rows);
            record.bytes = Some(self.bytes);
            record.duration_ms = Some(elapsed.as_secs_f64() * 1000.0);
            record.outcome = self.outcome;
            if let Some((code, message)) = self.failure.take() {
                record.code = Some(format!("{code:?}"));
                let text = self
                    .audit_error
                    .lock()
                    .ok()
                    .and_then(|mut t| t.take())
                    .unwrap_or(message);
                record.set_error(&text);
            }
            log.append(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_run_twice_is_cancelled_as_one_and_forgotten_when_both_end() {
        let running = Arc::new(Running::default());
        let first = running.register("q1");
        let second = running.register("q1");
        assert!(running.cancel("q1"));
        assert!(first.token.is_cancelled() && second.token.is_cancelled());
        drop(first);
        assert!(running.cancel("q1"), "still running once");
        drop(second);
        assert!(!running.cancel("q1"));
        assert!(!running.cancel("never-ran"));
    }
}
