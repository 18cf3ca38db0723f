//! A real PostgreSQL server for the database-source tests, in its own temporary directory on
//! a free port, started and stopped by the test. The binaries come from
//! `scripts/test-deps.sh` (Debian's packages): `BUND_TEST_PG_BIN` (the directory with
//! initdb, pg_ctl and psql), falling back to the newest `/usr/lib/postgresql/*/bin`. As
//! root, PostgreSQL runs as the `postgres` user (it refuses root).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::harness::{free_port, scratch_dir};

/// The password of the `bund` user (tests only).
pub(crate) const PASSWORD: &str = "bund-test-pw";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn install_hint(what: &str) -> String {
    format!(
        "{what} not found: run `bash scripts/test-deps.sh` and `source .cache/env.sh` (or `bash scripts/test.sh`, which does both)"
    )
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A PostgreSQL cluster with a superuser `bund` (password [`PASSWORD`]) and database `bund`.
pub(crate) struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    pub(crate) port: u16,
    as_postgres: bool,
    running: bool,
}

impl Postgres {
    pub(crate) fn start(name: &str) -> Self {
        let bin = std::env::var("BUND_TEST_PG_BIN")
            .map(PathBuf::from)
            .ok()
            .or_else(|| {
                let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                    .ok()?
                    .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                    .filter(|d| d.join("initdb").exists())
                    .collect();
                dirs.sort();
                dirs.pop()
            })
            .unwrap_or_else(|| panic!("{}", install_hint("PostgreSQL (initdb, pg_ctl)")));
        let dir = scratch_dir(&format!("pg-{name}"));
        let as_postgres = is_root();
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("write pwfile");
        if as_postgres {
            run(
                Command::new("chown").args(["-R", "postgres"]).arg(&dir),
                "chown",
            );
        }
        let mut pg = Self {
            bin,
            dir,
            port: free_port(),
            as_postgres,
            running: false,
        };
        let data = pg.dir.join("data");
        run(
            pg.command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "bund", "--auth=scram-sha-256", "-E", "UTF8"])
                .args(["--locale=C.UTF-8", "--no-sync"])
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        );
        // pg_stat_statements lets tests read what Bund sent and how many rows it returned.
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nshared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\nfsync = off\nlog_min_duration_statement = 0\n",
            pg.port,
            pg.dir.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .expect("write postgresql.conf");
        pg.start_again();
        pg.sql("CREATE DATABASE bund");
        pg.sql_in("bund", "CREATE EXTENSION pg_stat_statements");
        pg
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Starts the server (again, after [`Postgres::stop`]) and waits until it accepts.
    pub(crate) fn start_again(&mut self) {
        run(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args(["-w", "-t", "60", "start"]),
            "pg_ctl start",
        );
        self.running = true;
    }

    /// Stops the server (fast shutdown: open connections are closed).
    pub(crate) fn stop(&mut self) {
        run(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        );
        self.running = false;
    }

    /// `postgres://bund:…@127.0.0.1:PORT/bund`
    pub(crate) fn url(&self) -> String {
        format!(
            "postgres://bund:{PASSWORD}@127.0.0.1:{}/bund?sslmode=disable",
            self.port
        )
    }

    /// Runs SQL in database `postgres` with psql; returns what it printed (unaligned).
    pub(crate) fn sql(&self, sql: &str) -> String {
        self.sql_in("postgres", sql)
    }

    pub(crate) fn sql_in(&self, db: &str, sql: &str) -> String {
        let out = run(
            Command::new(self.bin.join("psql"))
                .env("PGPASSWORD", PASSWORD)
                .args(["-h", "127.0.0.1", "-U", "bund", "-X", "-q", "-A", "-t"])
                .args(["-v", "ON_ERROR_STOP=1", "-p", &self.port.to_string()])
                .args(["-d", db, "-c", sql]),
            "psql",
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The server's log (every statement is logged with its duration).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
