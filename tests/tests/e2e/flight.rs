//! The Flight SQL protocol through arrow-flight's Rust clients: login, metadata, queries,
//! prepared statements, the bad-input cases, limits, cancellation and shutdown.

use std::time::Duration;

use arrow_flight::sql::ProstMessageExt;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetSqlInfo,
    CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo, CommandStatementQuery, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, Ticket};
use datafusion::arrow::array::{Array, BinaryArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::ipc::convert::try_schema_from_ipc_buffer;
use futures::TryStreamExt;
use prost::Message;
use tonic::Code;

use crate::harness::{
    RESIDENTS, Server, SetClock, column_strings, decode_any, example_config, row_count,
};

fn stmt(sql: &str) -> CommandStatementQuery {
    CommandStatementQuery {
        query: sql.to_string(),
        transaction_id: None,
    }
}

#[tokio::test]
async fn login_with_and_without_base64_padding_then_query() {
    let server = Server::start();
    for pad in [true, false] {
        let mut c = server.client().await;
        c.handshake_basic("admin:admin-demo", pad)
            .await
            .expect("login");
        let batches = c
            .query("SELECT count(*) FROM police.residents")
            .await
            .expect("query");
        assert_eq!(column_strings(&batches, 0), vec![RESIDENTS.to_string()]);
    }
}

#[tokio::test]
async fn every_example_principal_can_log_in() {
    let server = Server::start();
    for user in [
        "admin",
        "pudong_police",
        "market_analyst",
        "city_analyst",
        "auditor",
    ] {
        let mut c = server.login(user).await;
        let batches = c.query("SELECT 1 AS one").await.expect("query");
        assert_eq!(column_strings(&batches, 0), vec!["1"]);
    }
}

#[tokio::test]
async fn wrong_password_unknown_user_and_missing_token_are_unauthenticated() {
    // Without a grant to `anonymous`, a request without credentials is refused.
    let config = example_config("no-anonymous", None);
    let security = std::fs::read_to_string(config.join("security.toml")).unwrap();
    let grant = "[[grant]]\nroles = [\"anonymous\"]";
    assert!(security.contains(grant));
    std::fs::write(
        config.join("security.toml"),
        security.replace(grant, "[[grant]]\nroles = [\"admin\"]"),
    )
    .unwrap();
    let server = Server::start_with(&config);
    let mut c = server.client().await;
    assert_eq!(
        c.handshake_basic("admin:wrong", true)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        c.handshake_basic("nobody:nobody-demo", true)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        c.handshake_basic("admin", true).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // No token at all: queries and every metadata call are refused.
    assert_eq!(
        c.info(stmt("SELECT 1")).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        c.info(CommandGetCatalogs {}).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        c.info(CommandGetTables::default())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        c.info(CommandGetSqlInfo::default())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // A metadata ticket is the command itself; DoGet still wants a token.
    let ticket = Ticket::new(CommandGetCatalogs {}.as_any().encode_to_vec());
    assert_eq!(
        c.get(ticket).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // A forged or altered token.
    c.token = Some("eyJraW5kIjoic2Vzc2lvbiJ9.AAAA".into());
    assert_eq!(
        c.info(stmt("SELECT 1")).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut good = server.login("admin").await;
    let mut token = good.token.clone().unwrap().into_bytes();
    let last = token.len() - 2;
    token[last] = if token[last] == b'A' { b'B' } else { b'A' };
    good.token = Some(String::from_utf8(token).unwrap());
    assert_eq!(
        good.info(stmt("SELECT 1")).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn catalog_tree_lists_bureaus_topics_and_table_schemas() {
    let server = Server::start();
    let mut c = server.login("admin").await;
    let (_, _, b) = c.fetch(CommandGetCatalogs {}).await.unwrap();
    assert_eq!(column_strings(&b, 0), vec!["bund"]);

    let (_, _, b) = c.fetch(CommandGetDbSchemas::default()).await.unwrap();
    let mut schemas = column_strings(&b, 1);
    schemas.sort();
    assert_eq!(
        schemas,
        vec![
            "hrss", "licence", "market", "open", "planning", "police", "topic"
        ]
    );

    let (_, _, b) = c
        .fetch(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: Some("p%".into()),
        })
        .await
        .unwrap();
    assert_eq!(column_strings(&b, 1), vec!["planning", "police"]);

    // No catalog filter means all catalogs.
    let cmd = CommandGetTables {
        include_schema: true,
        ..Default::default()
    };
    let (_, _, b) = c.fetch(cmd).await.unwrap();
    let names: Vec<String> = column_strings(&b, 1)
        .into_iter()
        .zip(column_strings(&b, 2))
        .map(|(s, t)| format!("{s}.{t}"))
        .collect();
    for t in [
        "police.residents",
        "market.enterprises",
        "hrss.contributions",
        "planning.poi",
        "licence.licences",
        "topic.population",
        "topic.legal_entity",
    ] {
        assert!(names.contains(&t.to_string()), "{t} missing from {names:?}");
    }
    let types = column_strings(&b, 3);
    let topic_row = names.iter().position(|n| n == "topic.population").unwrap();
    assert_eq!(types[topic_row], "VIEW");
    let resident_row = names.iter().position(|n| n == "police.residents").unwrap();
    assert_eq!(types[resident_row], "TABLE");

    // The residents' schema, as the BI tool reads it.
    let schemas = b[0]
        .column(4)
        .as_any()
        .downcast_ref::<BinaryArray>()
        .unwrap();
    let schema = try_schema_from_ipc_buffer(schemas.value(resident_row)).unwrap();
    let cols: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        cols,
        vec![
            "id_card",
            "name",
            "sex",
            "birth_date",
            "phone",
            "district_code",
            "address",
            "household_id"
        ]
    );
    assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
    assert_eq!(schema.field(3).data_type(), &DataType::Date32);

    // Filters by pattern and type.
    let cmd = CommandGetTables {
        db_schema_filter_pattern: Some("topic".into()),
        table_types: vec!["VIEW".into()],
        ..Default::default()
    };
    let (_, _, b) = c.fetch(cmd).await.unwrap();
    let mut topics = column_strings(&b, 2);
    topics.sort();
    assert_eq!(topics, vec!["legal_entity", "population"]);

    let (_, _, b) = c.fetch(CommandGetTableTypes {}).await.unwrap();
    assert_eq!(column_strings(&b, 0), vec!["TABLE", "VIEW"]);
}

#[tokio::test]
async fn sql_info_xdbc_types_and_keys_answer_with_standard_schemas() {
    let server = Server::start();
    let mut c = server.login("admin").await;
    let cmd = CommandGetSqlInfo {
        info: vec![
            SqlInfo::FlightSqlServerName as u32,
            SqlInfo::SqlIdentifierQuoteChar as u32,
            SqlInfo::FlightSqlServerReadOnly as u32,
        ],
    };
    let (info, schema, b) = c.fetch(cmd).await.unwrap();
    assert_eq!(row_count(&b), 3);
    assert_eq!(info.clone().try_decode_schema().unwrap(), *schema);
    let (_, _, b) = c
        .fetch(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .unwrap();
    let type_names = column_strings(&b, 0);
    for t in [
        "VARCHAR",
        "BIGINT",
        "DOUBLE",
        "DATE",
        "TIMESTAMP",
        "DECIMAL",
        "BOOLEAN",
    ] {
        assert!(type_names.contains(&t.to_string()), "{t} missing");
    }
    let cmd = CommandGetPrimaryKeys {
        catalog: None,
        db_schema: Some("police".into()),
        table: "residents".into(),
    };
    let (info, schema, b) = c.fetch(cmd).await.unwrap();
    assert_eq!(row_count(&b), 0);
    assert_eq!(info.try_decode_schema().unwrap(), *schema);
    assert_eq!(schema.field(2).name(), "table_name");
}

#[tokio::test]
async fn announced_schema_equals_streamed_schema_and_views_are_plain_utf8() {
    let server = Server::start();
    let mut c = server.login("admin").await;
    for sql in [
        "SELECT * FROM police.residents",
        "SELECT * FROM market.enterprises",
        "SELECT * FROM hrss.contributions",
        "SELECT * FROM planning.poi",
        "SELECT * FROM licence.licences",
        "SELECT * FROM topic.population",
        "SELECT * FROM topic.legal_entity",
        "SELECT district_code, count(*) AS n FROM police.residents GROUP BY district_code",
        "SELECT arrow_cast('x', 'Utf8View') AS v, upper(name) FROM police.residents LIMIT 3",
        "SELECT * FROM police.residents WHERE 1 = 0",
    ] {
        let (info, schema, batches) = c
            .fetch(stmt(sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let announced = info.try_decode_schema().unwrap();
        assert_eq!(announced, *schema, "{sql}");
        for b in &batches {
            assert_eq!(b.schema().fields(), schema.fields(), "{sql}");
        }
        for f in schema.fields() {
            assert!(
                !matches!(f.data_type(), DataType::Utf8View | DataType::BinaryView),
                "{sql}: {f:?}"
            );
        }
    }
}

#[tokio::test]
async fn query_values_match_the_generated_data() {
    let server = Server::start();
    let mut c = server.login("admin").await;
    let b = c
        .query("SELECT id_card, sex, birth_date FROM police.residents ORDER BY id_card LIMIT 50")
        .await
        .unwrap();
    let ids = column_strings(&b, 0);
    let sexes = column_strings(&b, 1);
    let births = column_strings(&b, 2);
    assert_eq!(ids.len(), 50);
    for ((id, sex), birth) in ids.iter().zip(&sexes).zip(&births) {
        // GB 11643: check character, sex from the 17th digit, birth date from digits 7–14.
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = id
            .bytes()
            .take(17)
            .zip(weights)
            .map(|(c, w)| u32::from(c - b'0') * w)
            .sum();
        assert_eq!(
            id.as_bytes()[17],
            b"10X98765432"[(sum % 11) as usize],
            "{id}"
        );
        let odd = (id.as_bytes()[16] - b'0') % 2 == 1;
        assert_eq!(sex, if odd { "M" } else { "F" }, "{id}");
        assert_eq!(birth.replace('-', ""), id[6..14], "{id}");
    }
    // Every contribution belongs to a resident: the topic library joins all of them.
    let b = c.query("SELECT (SELECT count(*) FROM hrss.contributions) AS c, (SELECT count(*) FROM topic.population) AS p").await.unwrap();
    let c_rows = column_strings(&b, 0);
    assert_eq!(c_rows, column_strings(&b, 1));
    assert_ne!(c_rows[0], "0");
}

#[tokio::test]
async fn bad_statements_get_the_right_status() {
    let server = Server::start();
    let mut c = server.login("admin").await;
    let err = c
        .info(stmt("SELEC * FROM police.residents"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("SELEC"), "{}", err.message());
    for sql in [
        "SELECT * FROM police.nothing",
        "SELECT * FROM nobody.residents",
        "SELECT * FROM residents",
        "SELECT * FROM other.police.residents",
    ] {
        assert_eq!(
            c.info(stmt(sql)).await.unwrap_err().code(),
            Code::NotFound,
            "{sql}"
        );
    }
    assert_eq!(
        c.info(stmt("SELECT no_such_column FROM police.residents"))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    for sql in [
        "CREATE TABLE t (x int)",
        "DROP TABLE police.residents",
        "INSERT INTO police.residents (id_card) VALUES ('x')",
        "DELETE FROM police.residents",
        "COPY police.residents TO '/tmp/x.csv'",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
        "SET datafusion.execution.batch_size = 1",
        "CREATE VIEW v AS SELECT 1",
    ] {
        assert_eq!(
            c.info(stmt(sql)).await.unwrap_err().code(),
            Code::PermissionDenied,
            "{sql}"
        );
    }
    // A failure while running reaches the client as a status, and the server goes on.
    let err = c
        .query("SELECT 1 / (length(name) - length(name)) FROM police.residents")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert_eq!(
        column_strings(&c.query("SELECT 2").await.unwrap(), 0),
        vec!["2"]
    );
}

/// DoGet runs the plan its GetFlightInfo kept (`service/planned.rs`) once; a ticket fetched
/// again, or whose plan was pushed out by more FlightInfos than plans are kept, is planned
/// again from the statement it carries, with the same answer.
#[tokio::test]
async fn a_ticket_answers_alike_from_its_kept_plan_and_planned_again() {
    let server = Server::start();
    let mut admin = server.login("admin").await;
    let ticket = |info: arrow_flight::FlightInfo| info.endpoint[0].ticket.clone().unwrap();
    let first = ticket(admin.info(stmt("SELECT 41 + 1 AS n")).await.unwrap());
    for _ in 0..2 {
        let (_, b) = admin.get(first.clone()).await.unwrap();
        assert_eq!(column_strings(&b, 0), vec!["42"]);
    }
    let pushed_out = ticket(admin.info(stmt("SELECT 43 AS n")).await.unwrap());
    for i in 0..300 {
        admin.info(stmt(&format!("SELECT {i}"))).await.unwrap();
    }
    let (_, b) = admin.get(pushed_out).await.unwrap();
    assert_eq!(column_strings(&b, 0), vec!["43"]);
}

#[tokio::test]
async fn tickets_are_bound_to_their_principal_and_refused_when_altered() {
    let server = Server::start();
    let mut admin = server.login("admin").await;
    let mut other = server.login("market_analyst").await;
    let info = admin
        .info(stmt("SELECT name FROM police.residents LIMIT 1"))
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();

    assert_eq!(
        other.get(ticket.clone()).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    let inner: TicketStatementQuery = decode_any(&ticket.ticket);
    let handle = inner.statement_handle.to_vec();
    for i in [0, 5, handle.len() / 2, handle.len() - 1] {
        let mut altered = handle.clone();
        altered[i] ^= 0x20;
        let t = Ticket::new(
            TicketStatementQuery {
                statement_handle: altered.into(),
            }
            .as_any()
            .encode_to_vec(),
        );
        assert_eq!(
            admin.get(t).await.unwrap_err().code(),
            Code::PermissionDenied,
            "byte {i}"
        );
    }
    // The untouched ticket still works for its owner.
    let (_, b) = admin.get(ticket).await.unwrap();
    assert_eq!(row_count(&b), 1);
}

/// A ticket serves until its lifetime has passed on the server's clock, and not after.
#[tokio::test]
async fn expired_tickets_are_refused() {
    let config = example_config("short-tickets", Some("ticket_ttl_secs = 60\n"));
    let clock = SetClock::now();
    let server = Server::start_with_clock(&config, clock.clone());
    let mut c = server.login("admin").await;
    let info = c.info(stmt("SELECT 1")).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    clock.advance(Duration::from_secs(58));
    let (_, b) = c.get(ticket.clone()).await.unwrap();
    assert_eq!(row_count(&b), 1);
    clock.advance(Duration::from_secs(3));
    let err = c.get(ticket).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert!(err.message().contains("expired"), "{}", err.message());
}

async fn sql_client(
    server: &Server,
    user: &str,
) -> FlightSqlServiceClient<tonic::transport::Channel> {
    let mut client = FlightSqlServiceClient::new(server.channel().await);
    client
        .handshake(user, &format!("{user}-demo"))
        .await
        .expect("handshake");
    client
}

#[tokio::test]
async fn prepared_statements_bind_question_mark_and_dollar_parameters() {
    let server = Server::start();
    let mut raw = server.login("admin").await;
    let expected = raw
        .query("SELECT id_card, name FROM police.residents ORDER BY id_card LIMIT 1")
        .await
        .unwrap();
    let id = column_strings(&expected, 0)[0].clone();
    let name = column_strings(&expected, 1)[0].clone();

    let mut client = sql_client(&server, "admin").await;
    for sql in [
        "SELECT name FROM police.residents WHERE id_card = ?",
        "SELECT name FROM police.residents WHERE id_card = $1",
    ] {
        let mut prepared = client
            .prepare(sql.to_string(), None)
            .await
            .expect("prepare");
        assert_eq!(prepared.parameter_schema().unwrap().fields().len(), 1);
        assert_eq!(prepared.dataset_schema().unwrap().field(0).name(), "name");
        let params = RecordBatch::try_new(
            std::sync::Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, true)])),
            vec![std::sync::Arc::new(StringArray::from(vec![id.as_str()]))],
        )
        .unwrap();
        prepared.set_parameters(params).unwrap();
        let info = prepared.execute().await.expect("execute");
        let batches: Vec<RecordBatch> = client
            .do_get(info.endpoint[0].ticket.clone().unwrap())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(column_strings(&batches, 0), vec![name.clone()], "{sql}");
        prepared.close().await.expect("close");
    }

    // Two `?` bind in order.
    let mut prepared = client
        .prepare("SELECT ? AS a, ? AS b".to_string(), None)
        .await
        .unwrap();
    let params = RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ])),
        vec![
            std::sync::Arc::new(datafusion::arrow::array::Int64Array::from(vec![7])),
            std::sync::Arc::new(StringArray::from(vec!["seven"])),
        ],
    )
    .unwrap();
    prepared.set_parameters(params).unwrap();
    let info = prepared.execute().await.unwrap();
    let batches: Vec<RecordBatch> = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(column_strings(&batches, 0), vec!["7"]);
    assert_eq!(column_strings(&batches, 1), vec!["seven"]);
}

#[tokio::test]
async fn prepared_handles_are_bound_to_their_principal() {
    use arrow_flight::sql::CommandPreparedStatementQuery;
    let server = Server::start();
    let mut admin = server.login("admin").await;
    let mut other = server.login("auditor").await;
    let handle = admin.create_prepared("SELECT 1").await;

    let cmd = CommandPreparedStatementQuery {
        prepared_statement_handle: handle.clone(),
    };
    assert_eq!(
        other.info(cmd.clone()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let mut altered = handle.to_vec();
    altered[10] ^= 1;
    let bad = CommandPreparedStatementQuery {
        prepared_statement_handle: altered.into(),
    };
    assert_eq!(
        admin.info(bad).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let (_, _, b) = admin.fetch(cmd).await.unwrap();
    assert_eq!(column_strings(&b, 0), vec!["1"]);
}

/// A query that produces rows slowly enough to be interrupted: a cross join.
const BIG: &str = "SELECT a.id_card, b.name FROM police.residents a CROSS JOIN police.residents b";

#[tokio::test]
async fn cancel_flight_info_stops_a_running_query() {
    let server = Server::start();
    let mut c = server.login("admin").await;
    let info = c.info(stmt(BIG)).await.unwrap();
    let req = c.request(info.endpoint[0].ticket.clone().unwrap());
    let mut stream = c.inner.do_get(req).await.unwrap().into_inner();
    stream.message().await.unwrap().expect("schema");
    stream.message().await.unwrap().expect("first batch");

    let body = CancelFlightInfoRequest { info: Some(info) }.encode_to_vec();
    let req = c.request(Action {
        r#type: "CancelFlightInfo".into(),
        body: body.into(),
    });
    let mut results = c.inner.do_action(req).await.unwrap().into_inner();
    let result =
        CancelFlightInfoResult::decode(results.message().await.unwrap().unwrap().body).unwrap();
    assert_eq!(result.status, CancelStatus::Cancelled as i32);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let err = loop {
        match tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("stream ends after cancel")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without reporting the cancellation"),
            Err(status) => break status,
        }
    };
    assert_eq!(err.code(), Code::Cancelled);
    // The server is fine afterwards.
    assert_eq!(
        column_strings(&c.query("SELECT 3").await.unwrap(), 0),
        vec!["3"]
    );
}

#[tokio::test]
async fn excess_queries_wait_then_get_resource_exhausted_and_dropped_streams_free_their_slot() {
    let config = example_config(
        "one-slot",
        Some("max_concurrent_queries = 1\nqueue_timeout_secs = 1\n"),
    );
    let server = Server::start_with(&config);
    let mut c = server.login("admin").await;
    let info = c.info(stmt(BIG)).await.unwrap();
    let req = c.request(info.endpoint[0].ticket.clone().unwrap());
    let mut held = c.inner.do_get(req).await.unwrap().into_inner();
    held.message().await.unwrap().expect("schema");

    let mut d = server.login("admin").await;
    let err = d.query("SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");

    // A client that goes away releases its slot.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match d.query("SELECT 4").await {
            Ok(b) => {
                assert_eq!(column_strings(&b, 0), vec!["4"]);
                break;
            }
            Err(e)
                if e.code() == Code::ResourceExhausted
                    && tokio::time::Instant::now() < deadline =>
            {
                continue;
            }
            Err(e) => panic!("slot never freed: {e}"),
        }
    }
}

#[tokio::test]
async fn queries_past_the_time_limit_fail_with_deadline_exceeded() {
    let config = example_config("short-queries", Some("query_timeout_secs = 1\n"));
    let server = Server::start_with(&config);
    let mut c = server.login("admin").await;
    let info = c.info(stmt(BIG)).await.unwrap();
    let req = c.request(info.endpoint[0].ticket.clone().unwrap());
    let mut stream = c.inner.do_get(req).await.unwrap().into_inner();
    let err = loop {
        match stream.message().await {
            Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(None) => panic!("a query of 4 million rows read slowly finished within 1 s"),
            Err(status) => break status,
        }
    };
    assert_eq!(err.code(), Code::DeadlineExceeded);
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let server = Server::process_example();
    let mut c = server.login("admin").await;
    c.query("SELECT 1").await.unwrap();
    let status = server.stop();
    assert!(status.success(), "bund exited with {status}");
}

#[tokio::test]
async fn show_describe_explain_and_information_schema_answer() {
    let server = Server::start();
    let mut c = server.login("admin").await;
    let b = c.query("SHOW TABLES").await.unwrap();
    let tables: Vec<String> = column_strings(&b, 1)
        .into_iter()
        .zip(column_strings(&b, 2))
        .map(|(s, t)| format!("{s}.{t}"))
        .collect();
    assert!(
        tables.contains(&"police.residents".to_string()),
        "{tables:?}"
    );
    let b = c.query("DESCRIBE police.residents").await.unwrap();
    assert_eq!(column_strings(&b, 0)[0], "id_card");
    let b = c
        .query("EXPLAIN SELECT count(*) FROM police.residents")
        .await
        .unwrap();
    assert!(
        column_strings(&b, 1)
            .iter()
            .any(|p| p.contains("DataSourceExec")),
        "{:?}",
        column_strings(&b, 1)
    );
    let b = c.query("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = 'topic' ORDER BY table_name").await.unwrap();
    assert_eq!(column_strings(&b, 1), vec!["legal_entity", "population"]);
}

#[tokio::test]
async fn concurrent_clients_stream_independently_while_others_fail() {
    let server = Server::start();
    let mut admin = server.login("admin").await;
    let pudong = column_strings(
        &admin
            .query("SELECT count(*) FROM police.residents WHERE district_code = '310115'")
            .await
            .unwrap(),
        0,
    )[0]
    .parse::<usize>()
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        // Admins see every resident; Pudong's police their district's, through the row filter.
        let (user, expected) = if i % 2 == 0 {
            ("admin", RESIDENTS as usize)
        } else {
            ("pudong_police", pudong)
        };
        let mut c = server.login(user).await;
        tasks.push(tokio::spawn(async move {
            if i % 3 == 2 {
                // Bad statements from some clients do not disturb the others.
                assert_eq!(
                    c.info(stmt("SELECT * FROM nowhere.nothing"))
                        .await
                        .unwrap_err()
                        .code(),
                    Code::NotFound
                );
                assert!(c.query("SELECT 1/0").await.is_err());
            }
            let b = c.query("SELECT * FROM police.residents").await.unwrap();
            (row_count(&b), expected)
        }));
    }
    for t in tasks {
        let (got, expected) = t.await.unwrap();
        assert_eq!(got, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_without_credentials_runs_within_the_anonymous_memory_limit() {
    // Every statement is planned in a copy of one of two sessions; a client without
    // credentials must get the one whose memory pool is capped at anonymous_memory_limit_mb.
    let config = example_config("anonymous-memory", Some("anonymous_memory_limit_mb = 1\n"));
    let server = Server::start_with(&config);
    let sql = "SELECT a.poi_id, b.poi_id, count(*) FROM planning.poi a CROSS JOIN planning.poi b GROUP BY a.poi_id, b.poi_id";
    let mut admin = server.login("admin").await;
    let b = admin.query(sql).await.expect("within the server's memory");
    assert!(row_count(&b) > 10_000, "{}", row_count(&b));
    let mut anonymous = server.client().await;
    let err = anonymous.query(sql).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(
        err.message().contains("more memory than the server allows"),
        "{err}"
    );
}

#[tokio::test]
async fn a_query_past_the_memory_limit_is_refused_and_the_server_goes_on() {
    let config = example_config("tiny-memory", Some("memory_limit_mb = 1\n"));
    let server = Server::start_with(&config);
    let mut c = server.login("admin").await;
    // Sorts spill to disk instead of failing. (First: the refused query's other partitions
    // give their memory back only as their tasks are cancelled, a moment after the client
    // has its error, and a 1 MB pool has no room for two.)
    let b = c.query("SELECT a.id_card FROM police.residents a CROSS JOIN police.residents b ORDER BY b.name, a.id_card LIMIT 2").await.unwrap();
    assert_eq!(row_count(&b), 2);
    let err = c
        .query("SELECT a.name, b.id_card, count(*) FROM police.residents a CROSS JOIN police.residents b GROUP BY a.name, b.id_card")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(
        err.message().contains("more memory than the server allows"),
        "{err}"
    );
    assert_eq!(
        column_strings(&c.query("SELECT 5").await.unwrap(), 0),
        vec!["5"]
    );
}
