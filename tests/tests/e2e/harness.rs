//! Starting servers (in this process, or the real binary) and a raw Flight client that keeps
//! status codes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{Any, ProstMessageExt};
use arrow_flight::{FlightDescriptor, FlightInfo, HandshakeRequest, Ticket};
use base64::Engine as _;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// Residents in the test data set; the other tables scale from it.
pub(crate) const RESIDENTS: u64 = 2_000;

/// The repository root (this crate lives in `tests/`).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `bund` binary next to this test binary (target/<profile>/bund), or `BUND_BIN`.
pub(crate) fn bund_bin() -> PathBuf {
    if let Ok(p) = std::env::var("BUND_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = dir.join("bund");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p bund-server` before the tests (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Removes the scratch directories of earlier test runs whose process has ended (a run
/// leaves its own behind for inspection; the next one clears them), the planner's fixtures
/// included (`bund-test-<pid>-planner-…`).
fn clear_old_scratch() {
    static CLEARED: std::sync::Once = std::sync::Once::new();
    CLEARED.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("bund-test-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    clear_old_scratch();
    let dir = std::env::temp_dir().join(format!("bund-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// catalog.toml entries of a bureau `id`: each of `databases` is (name, settings), each of
/// `tables` (name, its `source` between the braces, more lines such as `columns = …`).
pub(crate) fn bureau_entries(
    id: &str,
    databases: &[(&str, &str)],
    tables: &[(&str, &str, &str)],
) -> String {
    let mut out = String::new();
    for (name, settings) in databases {
        out.push_str(&format!("\n[[database]]\nname = \"{name}\"\n{settings}\n"));
    }
    out.push_str(&format!(
        "\n[[bureau]]\nid = \"{id}\"\nname_zh = \"{id}\"\nname_en = \"Bureau {id}\"\n"
    ));
    for (name, source, more) in tables {
        out.push_str(&format!(
            "\n[[bureau.table]]\nname = \"{name}\"\ndescription = \"{id}.{name}\"\nopen_level = \"not_open\"\nsource = {{ {source} }}\n{more}\n"
        ));
    }
    out
}

/// Appends entries to a configuration's catalog.toml and security.toml.
pub(crate) fn append_config(config: &Path, catalog: &str, security: &str) {
    for (file, extra) in [("catalog.toml", catalog), ("security.toml", security)] {
        let text = std::fs::read_to_string(config.join(file)).unwrap();
        std::fs::write(config.join(file), format!("{text}\n{extra}")).unwrap();
    }
}

/// The example data, generated once per test run.
pub(crate) fn example_data() -> &'static Path {
    static DATA: OnceLock<PathBuf> = OnceLock::new();
    DATA.get_or_init(|| {
        let out = scratch_dir("data");
        let status = Command::new(bund_bin())
            .args(["example-data", "--rows", &RESIDENTS.to_string(), "--out"])
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .expect("run bund example-data");
        assert!(status.success(), "bund example-data failed");
        out
    })
}

/// A config directory: the Shanghai example's files plus an optional server.toml. The
/// audit log of servers using it goes to `<dir>/audit`.
pub(crate) fn example_config(name: &str, server_toml: Option<&str>) -> PathBuf {
    let dir = scratch_dir(name);
    let example = repo_root().join("examples/shanghai");
    for f in ["catalog.toml", "security.toml"] {
        std::fs::copy(example.join(f), dir.join(f)).expect("copy example config");
    }
    let audit = format!("audit_dir = \"{}\"\n", dir.join("audit").display());
    let server = format!("{}{audit}", server_toml.unwrap_or_default());
    std::fs::write(dir.join("server.toml"), server).expect("write server.toml");
    dir
}

/// A replica name of its own for a server of the example configuration: the servers of
/// the tests share its audit directory, where each process writes its own files.
fn replica_name() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("test{}_{n}", std::process::id())
}

/// The example configuration, written once per test run.
fn default_config() -> &'static Path {
    static CONFIG: OnceLock<PathBuf> = OnceLock::new();
    CONFIG.get_or_init(|| example_config("config", None))
}

/// A running server: most tests serve in this process (`bund_server::start`, on port 0);
/// those that need a process of its own (its memory and CPU, surviving hostile input,
/// signals, the command line) start the real `bund serve` with [`Server::process`].
pub(crate) struct Server {
    backing: Backing,
    pub(crate) addr: String,
}

enum Backing {
    InProcess(bund_server::Running),
    Process(Process),
}

/// A `bund serve` child process, stopped with SIGTERM when dropped.
struct Process {
    child: Child,
    _logs: std::thread::JoinHandle<()>,
}

/// A clock a test sets: tokens and tickets of a server started with it expire when the
/// test says so ([`Server::start_with_clock`]).
#[derive(Debug)]
pub(crate) struct SetClock(std::sync::Mutex<std::time::SystemTime>);

impl SetClock {
    pub(crate) fn now() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self(std::sync::Mutex::new(std::time::SystemTime::now())))
    }

    pub(crate) fn advance(&self, by: Duration) {
        let mut t = self.0.lock().expect("clock");
        *t += by;
    }
}

impl bund_server::Clock for SetClock {
    fn now(&self) -> std::time::SystemTime {
        *self.0.lock().expect("clock")
    }
}

impl Server {
    /// An in-process server of the example configuration.
    pub(crate) fn start() -> Self {
        Self::start_with_env(
            default_config(),
            &[(bund_server::REPLICA_ENV, &replica_name())],
        )
    }

    /// The real `bund serve` of the example configuration.
    pub(crate) fn process_example() -> Self {
        Self::process_with_env(
            default_config(),
            &[(bund_server::REPLICA_ENV, &replica_name())],
        )
    }

    /// An in-process server of `config` (its data: the test data set).
    pub(crate) fn start_with(config: &Path) -> Self {
        Self::start_with_env(config, &[])
    }

    /// An in-process server of `config` whose `*_env` settings read `env` first.
    pub(crate) fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Self {
        Self::in_process(Self::options(config, env))
    }

    /// An in-process server of `config` on `addr` (a server started again where another
    /// stopped).
    pub(crate) fn start_at(config: &Path, addr: &str) -> Self {
        let mut start = Self::options(config, &[]);
        start.addr = addr.parse().expect("a socket address");
        Self::in_process(start)
    }

    /// An in-process server whose tokens and tickets expire by `clock`.
    pub(crate) fn start_with_clock(
        config: &Path,
        clock: std::sync::Arc<dyn bund_server::Clock>,
    ) -> Self {
        let mut start = Self::options(config, &[]);
        start.clock = clock;
        Self::in_process(start)
    }

    /// An in-process replica of `config` named `name`, signing with `key`: replicas of one
    /// configuration share its data and its audit directory.
    pub(crate) fn start_replica(config: &Path, name: &str, key: &[u8]) -> anyhow::Result<Self> {
        let mut start = Self::options(config, &[(bund_server::REPLICA_ENV, name)]);
        start.signing_key = Some(key.to_vec());
        Self::try_in_process(start)
    }

    fn options(config: &Path, env: &[(&str, &str)]) -> bund_server::Start {
        let mut options = bund_server::load_options(config, Some(example_data().to_path_buf()));
        for (name, value) in env {
            options.env = options.env.with(*name, *value);
        }
        let mut start = bund_server::Start::new(options);
        // A test that stops a server means it: open connections are closed at once.
        start.grace = Duration::ZERO;
        start
    }

    fn in_process(start: bund_server::Start) -> Self {
        let config = start.options.config_dir.display().to_string();
        Self::try_in_process(start)
            .unwrap_or_else(|e| panic!("cannot serve {config} in-process: {e:#}"))
    }

    fn try_in_process(start: bund_server::Start) -> anyhow::Result<Self> {
        let running = bund_server::start(start)?;
        Ok(Self {
            addr: running.addr().to_string(),
            backing: Backing::InProcess(running),
        })
    }

    /// Tells the server process to stop (SIGTERM), as an operator or an orchestrator
    /// would, without waiting for it.
    pub(crate) fn signal_stop(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM {}", self.pid());
    }

    /// Kills the server process at once (SIGKILL), as a crash or a lost machine would.
    pub(crate) fn kill(mut self) {
        let p = self.child_mut();
        let _ = p.child.kill();
        let _ = p.child.wait();
    }

    /// The in-process server, to read its reloads (panics for a process).
    pub(crate) fn running(&self) -> &bund_server::Running {
        match &self.backing {
            Backing::InProcess(r) => r,
            Backing::Process(_) => {
                panic!("this server is a process; start it with Server::start_with")
            }
        }
    }

    fn child(&self) -> &Process {
        match &self.backing {
            Backing::Process(p) => p,
            Backing::InProcess(_) => {
                panic!("this server runs in the test process; start it with Server::process")
            }
        }
    }

    fn child_mut(&mut self) -> &mut Process {
        match &mut self.backing {
            Backing::Process(p) => p,
            Backing::InProcess(_) => {
                panic!("this server runs in the test process; start it with Server::process")
            }
        }
    }

    /// The real `bund serve` of `config`, as a process of its own.
    pub(crate) fn process(config: &Path) -> Self {
        Self::process_with_env(config, &[])
    }

    pub(crate) fn process_with_env(config: &Path, env: &[(&str, &str)]) -> Self {
        Self::process_at(config, "127.0.0.1:0", env)
    }

    /// The real `bund serve` of `config` on `addr` (a replica a load balancer knows).
    pub(crate) fn process_at(config: &Path, addr: &str, env: &[(&str, &str)]) -> Self {
        Self::process_args(config, addr, env, &[])
    }

    /// [`Server::process_at`] with more arguments of `bund serve`.
    pub(crate) fn process_args(
        config: &Path,
        addr: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let mut command = Command::new(bund_bin());
        Self::serve_args(&mut command, config, addr, env);
        command.args(args);
        Self::spawn(command)
    }

    fn serve_args(command: &mut Command, config: &Path, addr: &str, env: &[(&str, &str)]) {
        command
            .args(["serve", "--flight-addr", addr, "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(example_data())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }

    /// Starts `command` and waits for the address it serves on; passes its log on to ours.
    fn spawn(mut command: Command) -> Self {
        let mut child = command.spawn().expect("start bund serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let logs = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("bund: serving Flight SQL on grpc://") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("bund serve did not print its address within 60 s")
            });
        Self {
            addr,
            backing: Backing::Process(Process { child, _logs: logs }),
        }
    }

    /// The server process's id (for its memory and CPU in /proc).
    pub(crate) fn pid(&self) -> u32 {
        self.child().child.id()
    }

    /// True while the server process runs.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child_mut().child.try_wait(), Ok(None))
    }

    pub(crate) fn uri(&self) -> String {
        format!("grpc://{}", self.addr)
    }

    pub(crate) async fn channel(&self) -> Channel {
        channel_to(&self.addr).await
    }

    pub(crate) async fn client(&self) -> Raw {
        Raw::connect(&self.addr).await
    }

    pub(crate) async fn login(&self, user: &str) -> Raw {
        Raw::login(&self.addr, user).await.expect("login")
    }

    /// Writes `text` to `path`, a file of the in-process server's configuration, and waits
    /// until the server has loaded it.
    pub(crate) async fn write_and_load(&self, path: &Path, text: &str) {
        let before = self.running().reloads();
        std::fs::write(path, text).expect("write the configuration");
        assert!(
            self.running()
                .reloaded(Duration::from_secs(20), |r| r.loaded > before.loaded)
                .await,
            "{} did not load the changed {} within 20 s",
            self.addr,
            path.display()
        );
    }

    /// Stops the server and waits until it has: a process gets SIGTERM and its exit status
    /// is returned; an in-process server that stopped without an error reads as exit 0.
    pub(crate) fn stop(self) -> std::process::ExitStatus {
        match self.backing {
            Backing::Process(mut p) => p.terminate(),
            Backing::InProcess(r) => {
                r.stop()
                    .expect("the in-process server stopped with an error");
                std::process::ExitStatus::default()
            }
        }
    }
}

impl Process {
    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// A connection to `addr`, retried for up to 30 s while nothing listens there yet.
async fn channel_to(addr: &str) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
        {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("cannot connect to {addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A Flight client that keeps the gRPC status of every failure.
pub(crate) struct Raw {
    pub(crate) inner: FlightServiceClient<Channel>,
    pub(crate) token: Option<String>,
    /// Sent as `x-api-key` when set.
    pub(crate) api_key: Option<String>,
}

impl Raw {
    /// A client of a new connection to `addr` (a server, or a load balancer in front of
    /// some).
    pub(crate) async fn connect(addr: &str) -> Self {
        Raw {
            inner: FlightServiceClient::new(channel_to(addr).await),
            token: None,
            api_key: None,
        }
    }

    /// A new connection to `addr`, logged in as the example principal `user` (password
    /// `<user>-demo`).
    pub(crate) async fn login(addr: &str, user: &str) -> Result<Self, Status> {
        let mut c = Self::connect(addr).await;
        c.handshake_basic(&format!("{user}:{user}-demo"), true)
            .await?;
        Ok(c)
    }

    pub(crate) fn request<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        if let Some(k) = &self.api_key {
            req.metadata_mut()
                .insert("x-api-key", k.parse().expect("header"));
        }
        if let Some(t) = &self.token {
            req.metadata_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("header"),
            );
        }
        req
    }

    pub(crate) async fn handshake_basic(
        &mut self,
        user_password: &str,
        pad: bool,
    ) -> Result<(), Status> {
        let engine = if pad {
            base64::engine::general_purpose::STANDARD
        } else {
            base64::engine::general_purpose::STANDARD_NO_PAD
        };
        let mut req = Request::new(futures::stream::iter([HandshakeRequest::default()]));
        req.metadata_mut().insert(
            "authorization",
            format!("Basic {}", engine.encode(user_password))
                .parse()
                .expect("header"),
        );
        let resp = self.inner.handshake(req).await?;
        let header = resp
            .metadata()
            .get("authorization")
            .expect("authorization header in handshake response");
        let token = header
            .to_str()
            .expect("ascii")
            .strip_prefix("Bearer ")
            .expect("Bearer token")
            .to_string();
        let _: Vec<_> = resp.into_inner().try_collect().await?;
        self.token = Some(token);
        Ok(())
    }

    pub(crate) async fn info(&mut self, cmd: impl ProstMessageExt) -> Result<FlightInfo, Status> {
        let desc = FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec());
        let req = self.request(desc);
        Ok(self.inner.get_flight_info(req).await?.into_inner())
    }

    /// DoGet of a ticket: the schema announced by the stream and its batches.
    pub(crate) async fn get(
        &mut self,
        ticket: Ticket,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
        let req = self.request(ticket);
        let stream = self.inner.do_get(req).await?.into_inner();
        let mut decoded = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
            stream.map_err(|s| s.into()),
        );
        let mut batches = Vec::new();
        while let Some(b) = decoded.try_next().await.map_err(flight_status)? {
            batches.push(b);
        }
        let schema = decoded
            .schema()
            .cloned()
            .expect("stream announced a schema");
        Ok((schema, batches))
    }

    /// GetFlightInfo then DoGet of its single endpoint.
    pub(crate) async fn fetch(
        &mut self,
        cmd: impl ProstMessageExt,
    ) -> Result<(FlightInfo, SchemaRef, Vec<RecordBatch>), Status> {
        let info = self.info(cmd).await?;
        let ticket = info.endpoint[0]
            .ticket
            .clone()
            .expect("endpoint has a ticket");
        let (schema, batches) = self.get(ticket).await?;
        Ok((info, schema, batches))
    }

    /// CreatePreparedStatement of `sql`: the handle.
    pub(crate) async fn create_prepared(&mut self, sql: &str) -> prost::bytes::Bytes {
        use arrow_flight::sql::{
            ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
        };
        let body = ActionCreatePreparedStatementRequest {
            query: sql.into(),
            transaction_id: None,
        }
        .as_any()
        .encode_to_vec();
        let req = self.request(arrow_flight::Action {
            r#type: "CreatePreparedStatement".into(),
            body: body.into(),
        });
        let mut results = self.inner.do_action(req).await.unwrap().into_inner();
        let result = results.message().await.unwrap().unwrap();
        let created: ActionCreatePreparedStatementResult = decode_any(&result.body);
        created.prepared_statement_handle
    }

    pub(crate) async fn query(&mut self, sql: &str) -> Result<Vec<RecordBatch>, Status> {
        let cmd = arrow_flight::sql::CommandStatementQuery {
            query: sql.to_string(),
            transaction_id: None,
        };
        self.fetch(cmd).await.map(|(_, _, b)| b)
    }
}

pub(crate) fn flight_status(e: arrow_flight::error::FlightError) -> Status {
    match e {
        arrow_flight::error::FlightError::Tonic(s) => *s,
        other => Status::unknown(other.to_string()),
    }
}

pub(crate) fn decode_any<T: ProstMessageExt + Default>(bytes: &[u8]) -> T {
    Any::decode(bytes)
        .expect("Any")
        .unpack::<T>()
        .expect("unpack")
        .expect("right type")
}

/// One column of a result as strings, for comparisons.
pub(crate) fn column_strings(batches: &[RecordBatch], col: usize) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let arr = datafusion::arrow::compute::cast(
            b.column(col),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .expect("cast");
        let arr = arr
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .expect("utf8");
        for i in 0..arr.len() {
            out.push(if arr.is_null(i) {
                "NULL".into()
            } else {
                arr.value(i).to_string()
            });
        }
    }
    out
}

pub(crate) fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}
