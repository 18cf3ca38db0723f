//! End-to-end tests: the real `bund` binary, started on port 0 with the Shanghai example's
//! catalog over freshly generated data, driven by real Flight SQL clients (arrow-flight's
//! Rust client, the ADBC Python driver, the Flight SQL JDBC driver).
//!
//! Build the binary first (`cargo build -p bund-server`); `scripts/test.sh` does it all.

mod check;
mod clients;
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
