//! A fuzzer for the Flight SQL surface of the real server: random and mutated commands,
//! tickets, prepared-statement handles, actions, uploads and handshakes, with and without
//! credentials, for a bounded time (`BUND_FUZZ_SECS`, 20 s by default; the seed is printed
//! and `BUND_FUZZ_SEED` replays it; `BUND_FUZZ_SHOW=1` prints each internal error). Every call must be answered within ten seconds with
//! data or a status, the process must live throughout, and afterwards it must still serve.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, Any,
    CommandGetDbSchemas, CommandGetTables, CommandPreparedStatementQuery, CommandStatementQuery,
    ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{Action, Criteria, FlightData, FlightDescriptor, HandshakeRequest, Ticket};
use futures::StreamExt;
use prost::Message;
use tonic::{Code, Request};

use crate::harness::{Raw, Server, column_strings};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// `valid` with a few bytes flipped, cut or added.
    fn mutate(&mut self, valid: &[u8]) -> Vec<u8> {
        let mut v = valid.to_vec();
        for _ in 0..1 + self.below(4) {
            match self.below(4) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 if !v.is_empty() => {
                    let at = self.below(v.len());
                    v.truncate(at);
                }
                2 => {
                    let at = self.below(v.len() + 1);
                    v.insert(at, self.next() as u8);
                }
                _ => v.extend(self.bytes(16)),
            }
        }
        v
    }
}

const TYPE_URLS: &[&str] = &[
    "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandPreparedStatementQuery",
    "type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandGetTables",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandGetDbSchemas",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandGetCatalogs",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandGetSqlInfo",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandGetXdbcTypeInfo",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandGetPrimaryKeys",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandGetCrossReference",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementUpdate",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementIngest",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandPreparedStatementUpdate",
    "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementSubstraitPlan",
    "type.googleapis.com/garbage",
];

const ACTIONS: &[&str] = &[
    "CreatePreparedStatement",
    "ClosePreparedStatement",
    "CancelQuery",
    "CancelFlightInfo",
    "RenewFlightEndpoint",
    "CloseSession",
    "SetSessionOptions",
    "GetSessionOptions",
    "BeginTransaction",
    "EndTransaction",
    "CreatePreparedSubstraitPlan",
    "",
    "\u{0}",
];

/// A command: random bytes, an `Any` of a known type with random or mutated contents, or a
/// mutated valid one.
fn command(r: &mut Rng, valid: &[Vec<u8>]) -> Vec<u8> {
    match r.below(5) {
        0 => r.bytes(256),
        1 => Any {
            type_url: TYPE_URLS[r.below(TYPE_URLS.len())].to_string(),
            value: r.bytes(128).into(),
        }
        .encode_to_vec(),
        2 => {
            let pattern = match r.below(4) {
                0 => "%".repeat(r.below(50_000)),
                1 => "_".repeat(r.below(50_000)),
                2 => "(".repeat(r.below(1000)),
                _ => String::from_utf8_lossy(&r.bytes(64)).into_owned(),
            };
            if r.below(2) == 0 {
                CommandGetTables {
                    catalog: Some(pattern.clone()),
                    db_schema_filter_pattern: Some(pattern.clone()),
                    table_name_filter_pattern: Some(pattern),
                    table_types: vec!["TABLE".into(), "\u{0}".into()],
                    include_schema: r.below(2) == 0,
                }
                .as_any()
                .encode_to_vec()
            } else {
                CommandGetDbSchemas {
                    catalog: Some(pattern.clone()),
                    db_schema_filter_pattern: Some(pattern),
                }
                .as_any()
                .encode_to_vec()
            }
        }
        3 => CommandStatementQuery {
            query: String::from_utf8_lossy(&r.bytes(200)).into_owned(),
            transaction_id: Some(r.bytes(8).into()),
        }
        .as_any()
        .encode_to_vec(),
        _ => {
            let v = &valid[r.below(valid.len())];
            r.mutate(v)
        }
    }
}

#[tokio::test]
async fn fuzz_flight_sql_commands_and_tickets() {
    let secs: u64 = std::env::var("BUND_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("BUND_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    // budgets high enough that the calls reach the code behind the rate limit
    let config = crate::harness::example_config(
        "fuzz-flight",
        Some("audit_records_per_minute = 10000000\n"),
    );
    let mut server = Server::process(&config);
    let mut admin = server.login("admin").await;
    let mut anonymous = server.client().await;

    // valid material to mutate: tickets, commands, prepared handles
    let mut valid: Vec<Vec<u8>> = Vec::new();
    for sql in [
        "SELECT * FROM planning.poi LIMIT 3",
        "SELECT count(*) FROM police.residents",
    ] {
        let cmd = CommandStatementQuery {
            query: sql.into(),
            transaction_id: None,
        };
        valid.push(cmd.as_any().encode_to_vec());
        let info = admin.info(cmd).await.unwrap();
        valid.push(info.endpoint[0].ticket.clone().unwrap().ticket.to_vec());
    }
    let created = admin
        .inner
        .do_action(
            admin.request(Action {
                r#type: "CreatePreparedStatement".into(),
                body: ActionCreatePreparedStatementRequest {
                    query: "SELECT name FROM planning.poi WHERE category = ?".into(),
                    transaction_id: None,
                }
                .as_any()
                .encode_to_vec()
                .into(),
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap();
    let handle: arrow_flight::sql::ActionCreatePreparedStatementResult = Any::decode(created.body)
        .unwrap()
        .unpack()
        .unwrap()
        .unwrap();
    valid.push(
        CommandPreparedStatementQuery {
            prepared_statement_handle: handle.prepared_statement_handle.clone(),
        }
        .as_any()
        .encode_to_vec(),
    );
    valid.push(
        TicketStatementQuery {
            statement_handle: handle.prepared_statement_handle.clone(),
        }
        .as_any()
        .encode_to_vec(),
    );
    valid.push(
        ActionClosePreparedStatementRequest {
            prepared_statement_handle: handle.prepared_statement_handle,
        }
        .as_any()
        .encode_to_vec(),
    );

    let mut r = Rng(seed);
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let until = Instant::now() + Duration::from_secs(secs);
    let mut calls = 0u64;
    while Instant::now() < until {
        let c: &mut Raw = if r.below(2) == 0 {
            &mut admin
        } else {
            &mut anonymous
        };
        let rpc = r.below(7);
        let call = async {
            match rpc {
                0 => {
                    let ticket = Ticket::new(command(&mut r, &valid));
                    match c.inner.do_get(c.request(ticket)).await {
                        Ok(s) => {
                            let mut s = s.into_inner();
                            let mut last = Ok(());
                            for _ in 0..8 {
                                match s.next().await {
                                    Some(Ok(_)) => {}
                                    Some(Err(e)) => {
                                        last = Err(e);
                                        break;
                                    }
                                    None => break,
                                }
                            }
                            last
                        }
                        Err(e) => Err(e),
                    }
                }
                1 => {
                    let d = if r.below(6) == 0 {
                        FlightDescriptor::new_path(vec![
                            String::from_utf8_lossy(&r.bytes(32)).into(),
                        ])
                    } else {
                        FlightDescriptor::new_cmd(command(&mut r, &valid))
                    };
                    c.inner.get_flight_info(c.request(d)).await.map(|_| ())
                }
                2 => {
                    let action = Action {
                        r#type: ACTIONS[r.below(ACTIONS.len())].to_string(),
                        body: command(&mut r, &valid).into(),
                    };
                    match c.inner.do_action(c.request(action)).await {
                        Ok(s) => s
                            .into_inner()
                            .next()
                            .await
                            .unwrap_or(Ok(arrow_flight::Result::default()))
                            .map(|_| ()),
                        Err(e) => Err(e),
                    }
                }
                3 => {
                    let messages: Vec<FlightData> = (0..1 + r.below(3))
                        .map(|i| FlightData {
                            flight_descriptor: (i == 0)
                                .then(|| FlightDescriptor::new_cmd(command(&mut r, &valid))),
                            data_header: r.bytes(64).into(),
                            app_metadata: r.bytes(16).into(),
                            data_body: r.bytes(512).into(),
                        })
                        .collect();
                    let req = c.request(futures::stream::iter(messages));
                    match c.inner.do_put(req).await {
                        Ok(s) => s
                            .into_inner()
                            .next()
                            .await
                            .unwrap_or(Ok(Default::default()))
                            .map(|_| ()),
                        Err(e) => Err(e),
                    }
                }
                4 => {
                    let mut req = Request::new(futures::stream::iter([HandshakeRequest {
                        protocol_version: r.next(),
                        payload: r.bytes(128).into(),
                    }]));
                    let header = String::from_utf8_lossy(&r.bytes(48))
                        .chars()
                        .filter(|c| c.is_ascii_graphic() || *c == ' ')
                        .collect::<String>();
                    if let Ok(v) = format!("Basic {header}").parse() {
                        req.metadata_mut().insert("authorization", v);
                    }
                    c.inner.handshake(req).await.map(|_| ())
                }
                5 => {
                    let criteria = Criteria {
                        expression: r.bytes(64).into(),
                    };
                    c.inner.list_flights(c.request(criteria)).await.map(|_| ())
                }
                _ => {
                    let d = FlightDescriptor::new_cmd(command(&mut r, &valid));
                    c.inner.get_schema(c.request(d)).await.map(|_| ())
                }
            }
        };
        let outcome = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .unwrap_or_else(|_| {
                panic!("call {calls} (rpc {rpc}, seed {seed}) got no answer within 10 s")
            });
        let code = match outcome {
            Ok(()) => Code::Ok,
            Err(s) => {
                if s.code() == Code::Internal && std::env::var("BUND_FUZZ_SHOW").is_ok() {
                    println!("INTERNAL rpc {rpc}: {}", s.message());
                }
                s.code()
            }
        };
        *codes.entry(format!("{code:?}")).or_default() += 1;
        calls += 1;
        if calls.is_multiple_of(50) {
            assert!(
                server.alive(),
                "the server died (seed {seed}, call {calls})"
            );
        }
    }
    assert!(server.alive(), "the server died (seed {seed})");
    let mut after = server.login("admin").await;
    let b = after.query("SELECT 1").await.expect("still serving");
    assert_eq!(column_strings(&b, 0), vec!["1"]);
    crate::hostile::report(format!(
        "flight fuzz: seed {seed}, {secs} s: {calls} calls, answers by status {codes:?}"
    ));
    assert!(
        !codes.contains_key("Internal"),
        "internal errors: {codes:?}"
    );
}
