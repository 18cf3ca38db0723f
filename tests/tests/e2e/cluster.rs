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
