//! Replicas: servers of one configuration that sign with one key and share the data and
//! the audit directory. Any of them answers any request another began (a login, a ticket,
//! a prepared statement and its bound values), and the audit of each is read from every
//! one of them in `system.audit_log`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::sql::{
    CommandPreparedStatementQuery, CommandStatementQuery, DoPutPreparedStatementResult,
    ProstMessageExt,
};
use arrow_flight::{FlightDescriptor, PutResult};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use futures::{StreamExt, TryStreamExt};
use prost::Message;

use crate::harness::{Raw, Server, column_strings, example_config};

const KEY: &[u8] = b"the key every replica of this test signs with, 32+ bytes";

/// One text value bound to `handle` on `client`'s server: the handle it answers with.
async fn bind(client: &mut Raw, handle: prost::bytes::Bytes, value: &str) -> prost::bytes::Bytes {
    let cmd = CommandPreparedStatementQuery {
        prepared_statement_handle: handle,
    };
    let params = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, true)])),
        vec![Arc::new(StringArray::from(vec![value]))],
    )
    .unwrap();
    let data = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(
            cmd.as_any().encode_to_vec(),
        )))
        .build(futures::stream::iter([Ok(params)]))
        .map(|r| r.unwrap());
    let req = client.request(data);
    let results: Vec<PutResult> = client
        .inner
        .do_put(req)
        .await
        .unwrap()
        .into_inner()
        .try_collect()
        .await
        .unwrap();
    let bound = DoPutPreparedStatementResult::decode(results[0].app_metadata.clone()).unwrap();
    bound.prepared_statement_handle.expect("a bound handle")
}

#[tokio::test]
async fn any_replica_answers_what_another_began_and_reads_the_audit_of_both() {
    let config = example_config("replicas", None);
    let a = Server::start_replica(&config, "a", KEY).expect("replica a");
    let b = Server::start_replica(&config, "b", KEY).expect("replica b");

    // a login on A is a login on B
    let mut on_a = a.login("pudong_police").await;
    let mut on_b = b.client().await;
    on_b.token = on_a.token.clone();
    let sql = "SELECT id_card, name FROM police.residents ORDER BY id_card LIMIT 3";
    let expected = on_a.query(sql).await.unwrap();
    assert_eq!(on_b.query(sql).await.unwrap(), expected);
    let masked = column_strings(&expected, 0);
    assert!(masked[0].contains('*'), "{masked:?}");

    // A's ticket is redeemed by B, which did not plan it
    let info = on_a
        .info(CommandStatementQuery {
            query: sql.into(),
            transaction_id: None,
        })
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let (_, from_b) = on_b.get(ticket).await.unwrap();
    assert_eq!(from_b, expected);

    // prepared on A, bound on B, planned on B, run on A
    let name = column_strings(&expected, 1)[0].clone();
    let handle = on_a
        .create_prepared("SELECT count(*) FROM police.residents WHERE name = ?")
        .await;
    let bound = bind(&mut on_b, handle, &name).await;
    let info = on_b
        .info(CommandPreparedStatementQuery {
            prepared_statement_handle: bound,
        })
        .await
        .unwrap();
    let (_, counted) = on_a
        .get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    let direct = on_a
        .query(&format!(
            "SELECT count(*) FROM police.residents WHERE name = '{name}'"
        ))
        .await
        .unwrap();
    assert_eq!(counted, direct);

    // each replica's audit, read from the other: B served the DoGet of A's ticket, A the
    // DoGet of B's
    let mut auditor = a.login("auditor").await;
    let audited = "SELECT DISTINCT replica FROM system.audit_log \
                   WHERE principal = 'pudong_police' AND rpc = 'DoGet(Statement)' ORDER BY replica";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let replicas = column_strings(&auditor.query(audited).await.unwrap(), 0);
        if replicas == ["a", "b"] {
            break;
        }
        assert!(Instant::now() < deadline, "audited by {replicas:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.stop();
    a.stop();
}

#[tokio::test]
async fn a_second_replica_of_the_same_name_is_refused_and_says_what_to_do() {
    let config = example_config("replica-names", None);
    let first = Server::start_replica(&config, "one", KEY).expect("replica one");
    let Err(e) = Server::start_replica(&config, "one", KEY) else {
        panic!("two replicas named one were started on one audit directory");
    };
    let message = format!("{e:#}");
    assert!(message.contains("--replica NAME"), "{message}");
    let Err(e) = Server::start_replica(&config, "one-two", KEY) else {
        panic!("a replica name with '-' was taken");
    };
    assert!(format!("{e:#}").contains("letters, digits or _"), "{e:#}");
    let other = Server::start_replica(&config, "two", KEY).expect("replica two");
    other.stop();
    first.stop();
}

/// `config`'s files copied into a new directory `name`: a replica's own copy of the same
/// configuration (the same version while the files are the same).
fn copy_of(config: &std::path::Path, name: &str) -> std::path::PathBuf {
    let dir = crate::harness::scratch_dir(name);
    for f in ["catalog.toml", "security.toml", "server.toml"] {
        std::fs::copy(config.join(f), dir.join(f)).expect("copy the configuration");
    }
    dir
}

/// A comment added to `config`'s security.toml, and `server` loading it.
async fn change_policy(server: &Server, config: &std::path::Path) {
    let path = config.join("security.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    server
        .write_and_load(&path, &format!("{text}\n# policy change\n"))
        .await;
}

#[tokio::test]
async fn a_replica_behind_on_a_change_tells_the_client_to_retry_and_then_answers() {
    use tonic::Code;
    let config_a = example_config("replica-version-a", None);
    let config_b = copy_of(&config_a, "replica-version-b");
    let a = Server::start_replica(&config_a, "a", KEY).expect("replica a");
    let b = Server::start_replica(&config_b, "b", KEY).expect("replica b");
    let sql = "SELECT count(*) FROM police.residents";
    let statement = || CommandStatementQuery {
        query: sql.into(),
        transaction_id: None,
    };
    let mut on_a = a.login("pudong_police").await;
    let mut on_b = b.client().await;
    on_b.token = on_a.token.clone();
    let expected = on_a.query(sql).await.unwrap();
    let old = on_a.info(statement()).await.unwrap().endpoint[0]
        .ticket
        .clone()
        .unwrap();

    // the data-security department changes the policy; A loads it first
    change_policy(&a, &config_a).await;
    let new = on_a.info(statement()).await.unwrap().endpoint[0]
        .ticket
        .clone()
        .unwrap();
    // B has not: A's new ticket is not refused for good there, nor answered under the old
    // policy, but to be retried
    let behind = on_b.get(new.clone()).await.unwrap_err();
    assert_eq!(behind.code(), Code::Unavailable, "{behind:?}");
    assert!(behind.message().contains("retry"), "{behind:?}");
    // A, which issued the old ticket under the old policy, refuses it for good
    let stale = on_a.get(old).await.unwrap_err();
    assert_eq!(stale.code(), Code::PermissionDenied, "{stale:?}");

    change_policy(&b, &config_b).await;
    let (_, answered) = on_b.get(new).await.unwrap();
    assert_eq!(answered, expected);
    b.stop();
    a.stop();
}

/// HAProxy in TCP mode in front of replicas, as `examples/haproxy.cfg` documents it: round
/// robin over connections, each replica checked every 500 ms, a connection refused by one
/// sent to another.
struct Haproxy {
    child: std::process::Child,
    addr: String,
}

impl Haproxy {
    /// In front of `replicas`: (Flight SQL address, HTTP port of its `/healthz`).
    fn start(replicas: &[(&str, u16)]) -> Self {
        let bin = std::env::var("BUND_TEST_HAPROXY").unwrap_or_else(|_| "haproxy".into());
        let port = crate::harness::free_port();
        let dir = crate::harness::scratch_dir("haproxy");
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, (addr, http))| format!("    server r{i} {addr} check port {http}\n"))
            .collect();
        let template =
            std::fs::read_to_string(crate::harness::repo_root().join("examples/haproxy.cfg"))
                .expect("examples/haproxy.cfg");
        let config = template
            .replace("127.0.0.1:50050", &format!("127.0.0.1:{port}"))
            .split("    server ")
            .next()
            .expect("the example's backend")
            .to_string()
            + &servers;
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = std::process::Command::new(&bin)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {bin}: {e}; run `bash scripts/test-deps.sh` and `source .cache/env.sh` (or `bash scripts/test.sh`, which does both)"
                )
            });
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, addr }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new connection through `lb`, logged in as pudong_police: the count of residents it
/// sees, by a statement that names `phase` (so the audit tells the phases apart).
async fn count_through(lb: &Haproxy, phase: &str) -> Result<Vec<String>, tonic::Status> {
    let mut c = Raw::login(&lb.addr, "pudong_police").await?;
    let sql = format!("SELECT count(*) AS {phase} FROM police.residents");
    Ok(column_strings(&c.query(&sql).await?, 0))
}

/// The replicas that ran the statements of `phase`, read from the audit through `lb`.
async fn audited_by(lb: &Haproxy, phase: &str) -> Vec<String> {
    let mut auditor = Raw::login(&lb.addr, "auditor").await.unwrap();
    let sql = format!(
        "SELECT DISTINCT replica FROM system.audit_log WHERE rpc = 'DoGet(Statement)' \
         AND statement = 'SELECT count(*) AS {phase} FROM police.residents' ORDER BY replica"
    );
    column_strings(&auditor.query(&sql).await.unwrap(), 0)
}

#[tokio::test]
async fn replicas_behind_haproxy_serve_every_connection_and_a_killed_or_stopping_one_is_routed_around()
 {
    let config = example_config("haproxy-replicas", None);
    let key = String::from_utf8(KEY.to_vec()).unwrap();
    let addrs: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", crate::harness::free_port()))
        .collect();
    let http: Vec<u16> = (0..2).map(|_| crate::harness::free_port()).collect();
    let replica = |i: usize| {
        let name = format!("r{i}");
        Server::process_args(
            &config,
            &addrs[i],
            &[
                (bund_server::REPLICA_ENV, &name),
                ("BUND_SIGNING_KEY", &key),
            ],
            &["--http-addr", &format!("127.0.0.1:{}", http[i])],
        )
    };
    let r0 = replica(0);
    let r1 = replica(1);
    let lb = Haproxy::start(&[(&addrs[0], http[0]), (&addrs[1], http[1])]);

    // connections are spread over both replicas, and every one answers alike
    let expected = count_through(&lb, "spread").await.unwrap();
    for _ in 0..6 {
        assert_eq!(count_through(&lb, "spread").await.unwrap(), expected);
    }
    assert_eq!(
        wait_for_audit(&lb, "spread", &["r0", "r1"]).await,
        ["r0", "r1"]
    );

    // the BI flow of the ADBC and JDBC drivers through the load balancer
    let flow = crate::clients::Flow {
        user: Some("pudong_police"),
        table: "police.residents",
        query: "SELECT id_card, name FROM police.residents ORDER BY id_card LIMIT 3",
        prepared: "SELECT count(*) AS n FROM police.residents WHERE sex = ?",
        param: "F",
    };
    let want = flow.expected(&lb.addr).await;
    for (driver, out) in flow.run(&lb.addr) {
        want.check(driver, &out, &["police"]);
    }

    // r0 dies: every new connection is answered by r1, none fails
    r0.kill();
    let mut failed = Vec::new();
    for _ in 0..10 {
        match count_through(&lb, "killed").await {
            Ok(n) => assert_eq!(n, expected),
            Err(e) => failed.push(e),
        }
    }
    assert!(failed.is_empty(), "after r0 was killed: {failed:?}");
    assert_eq!(wait_for_audit(&lb, "killed", &["r1"]).await, ["r1"]);

    // r0 comes back on its address and is given connections again
    let r0 = replica(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert_eq!(count_through(&lb, "back").await.unwrap(), expected);
        if audited_by(&lb, "back").await.contains(&"r0".to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy sent nothing to the restarted r0"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // r1 is told to stop (SIGTERM): /healthz says 503 while it still takes connections, so
    // HAProxy stops sending it any before it closes its port; no new connection fails
    r1.signal_stop();
    let until = Instant::now() + Duration::from_secs(3);
    let mut failed = Vec::new();
    while Instant::now() < until {
        if let Err(e) = count_through(&lb, "drained").await {
            failed.push(e);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failed.is_empty(), "while r1 was stopping: {failed:?}");
    assert!(r1.stop().success());
    drop(lb);
    r0.stop();
}

/// `curl` of a replica's `/healthz`: the body and the status code.
fn curl(url: &str) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-w", "%{http_code}", url])
        .output()
        .expect("curl (Debian's curl package)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.split_at(text.len().saturating_sub(3));
    (body.trim().to_string(), code.to_string())
}

#[tokio::test]
async fn healthz_answers_curl_and_says_503_from_the_moment_a_replica_is_told_to_stop() {
    let config = example_config("healthz", None);
    let http = format!("127.0.0.1:{}", crate::harness::free_port());
    let server = Server::process_args(&config, "127.0.0.1:0", &[], &["--http-addr", &http]);
    let healthz = format!("http://{http}/healthz");
    assert_eq!(curl(&healthz), ("SERVING".into(), "200".into()));
    assert_eq!(curl(&format!("http://{http}/")).1, "404");
    // what anyone who reaches the port may send: bytes that are not HTTP, a header of a
    // megabyte; the answers stay the same and the process lives
    {
        use std::io::{Read, Write};
        let mut raw = std::net::TcpStream::connect(&http).unwrap();
        raw.write_all(&[0xff; 65_536]).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = raw.read(&mut [0; 1024]);
    }
    let headers = crate::harness::scratch_dir("healthz-junk").join("headers");
    std::fs::write(&headers, format!("X-Junk: {}\n", "a".repeat(1 << 20))).unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "10",
            "-H",
        ])
        .arg(format!("@{}", headers.display()))
        .arg(&healthz)
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(code == "431" || code == "000", "a 1 MiB header: {code}");
    assert_eq!(curl(&healthz), ("SERVING".into(), "200".into()));
    server.signal_stop();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (body, code) = curl(&healthz);
        if code == "503" {
            assert_eq!(body, "NOT_SERVING");
            break;
        }
        assert_eq!(code, "200", "{body}");
        assert!(Instant::now() < deadline, "still 200 1 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.stop().success());
}

/// Waits (up to 10 s: records are written a moment after the answer) until the audit read
/// through `lb` names `replicas` for `phase`; what it names then.
async fn wait_for_audit(lb: &Haproxy, phase: &str, replicas: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = audited_by(lb, phase).await;
        if seen == replicas || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_stopping_replica_says_not_serving_while_it_still_accepts_connections() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let check = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    let server = Server::process_example();
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "arrow.flight.protocol.FlightService"] {
        let status = health.check(check(service)).await.unwrap().into_inner();
        assert_eq!(status.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health.check(check("no.such.Service")).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    server.signal_stop();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match health.check(check("")).await {
            Ok(r) if r.get_ref().status() == ServingStatus::NotServing => break,
            Ok(_) => assert!(Instant::now() < deadline, "still SERVING 1 s after SIGTERM"),
            Err(e) => panic!("stopped answering before saying NOT_SERVING: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // a balancer's new connection is still taken, and told the same
    let mut fresh = HealthClient::new(
        tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
            .unwrap()
            .connect()
            .await
            .expect("a stopping server accepts connections during its notice"),
    );
    let status = fresh.check(check("")).await.unwrap().into_inner();
    assert_eq!(status.status(), ServingStatus::NotServing);
    drop((health, fresh));
    assert!(server.stop().success(), "a stopped replica exits cleanly");
}
