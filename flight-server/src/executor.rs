//! Where statements are planned and queries run: tokio runtimes of their own, apart from the
//! runtime that accepts connections, answers RPCs, checks credentials and watches for
//! signals (the pattern of InfluxDB IOx's executor). However much CPU the queries take, a
//! login, a metadata call or SIGTERM is served by threads no query runs on.
//!
//! Requests without credentials get an executor of their own with fewer threads
//! (`anonymous_threads`): the operating system shares the cores between the two, so
//! anonymous work never takes more of the machine than its threads.
//!
//! Query threads have large stacks: planning and evaluating an expression recurse over its
//! tree, and the planner accepts trees up to `max_expression_depth` deep
//! ([`crate::settings::MAX_EXPRESSION_DEPTH`] at most); the stack size below was measured for
//! that depth with the debug build, whose frames are the largest (see the README's security
//! section). Only the pages a thread touches are allocated.

use std::future::Future;
use std::time::Instant;

use bund_catalogs::Principal;

use crate::settings::ServerSettings;
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// Stack of each query thread. A chain of 1,000 operators took 22 MiB of stack to plan in
/// the debug build, 2,000 (`MAX_EXPRESSION_DEPTH`) about twice that; this leaves room.
pub(crate) const QUERY_STACK_BYTES: usize = 128 << 20;
/// Threads for blocking work (local file reads) per executor.
const BLOCKING_THREADS: usize = 32;

/// One runtime for planning and running queries.
pub(crate) struct Executor {
    runtime: Option<Runtime>,
    handle: Handle,
}

/// Why work on an executor produced no value.
#[derive(Debug)]
pub(crate) enum Stopped {
    /// The deadline passed first; the work was aborted.
    Deadline,
    /// It panicked (a bug): the message is logged.
    Panicked(String),
}

impl Executor {
    fn new(name: &str, threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .thread_stack_size(QUERY_STACK_BYTES)
            .max_blocking_threads(BLOCKING_THREADS)
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Self {
            runtime: Some(runtime),
            handle,
        })
    }

    /// Starts `fut` on this executor.
    pub(crate) fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut)
    }

    /// Runs `fut` on this executor and waits for it until `deadline`; past it the work is
    /// aborted (at its next await point).
    pub(crate) async fn run<F>(&self, fut: F, deadline: Instant) -> Result<F::Output, Stopped>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = self.spawn(fut);
        let abort = task.abort_handle();
        match tokio::time::timeout_at(deadline.into(), task).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Stopped::Panicked(e.to_string())),
            Err(_) => {
                abort.abort();
                Err(Stopped::Deadline)
            }
        }
    }
}

/// The executors of a server: one for principals, one for requests without credentials.
pub(crate) struct Executors {
    main: Executor,
    public: Executor,
}

impl Executors {
    pub(crate) fn new(settings: &ServerSettings) -> std::io::Result<Self> {
        Ok(Self {
            main: Executor::new("bund-query", settings.query_threads)?,
            public: Executor::new("bund-query-anon", settings.anonymous_threads)?,
        })
    }

    /// The executor that plans and runs `principal`'s statements.
    pub(crate) fn of(&self, principal: &Principal) -> &Executor {
        if principal.is_anonymous() {
            &self.public
        } else {
            &self.main
        }
    }
}

/// Dropping the executors stops both runtimes without waiting for what runs on them: a query
/// stuck in an operator that never yields must not hold the process after SIGTERM.
impl Drop for Executors {
    fn drop(&mut self) {
        for e in [&mut self.main, &mut self.public] {
            if let Some(rt) = e.runtime.take() {
                rt.shutdown_background();
            }
        }
    }
}
