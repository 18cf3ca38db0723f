//! End-to-end tests: Bund served on port 0 with the Shanghai example's catalog over freshly
//! generated data, driven by real Flight SQL clients (arrow-flight's Rust client, the ADBC
//! Python driver, the Flight SQL JDBC driver). Most tests serve in this process
//! (`bund_server::start`: shared servers, a clock the test sets, reloads observed without
//! reading logs); those that watch the server's memory and CPU, survive hostile input,
//! send signals or run the command line start the real `bund` binary (`Server::process`).
//!
//! Build the binary first (`cargo build -p bund-server`); `scripts/test.sh` does it all.

mod check;
mod clients;
mod cluster;
mod conformance;
mod databases;
mod dbservers;
mod flight;
mod flightsql;
mod fuzz;
mod harness;
mod hostile;
mod mariadb;
mod s3;
mod security;
mod udfs;
