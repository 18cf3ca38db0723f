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

/// A MariaDB server with a user `bund` (password [`PASSWORD`], all privileges) and database
/// `bund`, its slow-query log recording every statement with the rows it sent. Binaries
/// from Debian's `mariadb-server` (installed by `scripts/test-deps.sh`): `BUND_TEST_MARIADBD`
/// or `mariadbd` in PATH or /usr/sbin, and `mariadb-install-db` and `mariadb` beside it or
/// in PATH. As root, the server runs as the `mysql` user.
pub(crate) struct Mariadb {
    mariadbd: PathBuf,
    dir: PathBuf,
    pub(crate) port: u16,
    as_mysql: bool,
    child: Option<std::process::Child>,
}

fn find_program(env: &str, name: &str, dirs: &[&str]) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(dirs.iter().copied())
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{}", install_hint(&format!("MariaDB ({name})"))))
}

impl Mariadb {
    pub(crate) fn start(name: &str) -> Self {
        let mariadbd = find_program("BUND_TEST_MARIADBD", "mariadbd", &["/usr/sbin"]);
        let install = find_program(
            "BUND_TEST_MARIADB_INSTALL_DB",
            "mariadb-install-db",
            &["/usr/bin"],
        );
        let dir = scratch_dir(&format!("mariadb-{name}"));
        let as_mysql = is_root();
        std::fs::create_dir_all(dir.join("data")).expect("create data dir");
        // Its own temporary directory: bootstraps running at once in the shared /tmp
        // removed each other's temporary tables ("Unknown table 'mysql.tmp_user_sys'").
        std::fs::create_dir_all(dir.join("tmp")).expect("create tmp dir");
        if as_mysql {
            run(
                Command::new("chown").args(["-R", "mysql"]).arg(&dir),
                "chown",
            );
        }
        let mut install = Command::new(install);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg("--skip-name-resolve");
        if as_mysql {
            install.arg("--user=mysql");
        }
        install.env("TMPDIR", dir.join("tmp"));
        run(&mut install, "mariadb-install-db");
        let mut db = Self {
            mariadbd,
            dir,
            port: free_port(),
            as_mysql,
            child: None,
        };
        db.start_again();
        db.root_sql(&format!(
            "CREATE USER 'bund'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL ON *.* TO 'bund'@'127.0.0.1'; CREATE DATABASE bund;"
        ));
        db
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("mariadb.sock")
    }

    /// Starts the server (again, after [`Mariadb::stop`]) and waits until it accepts.
    pub(crate) fn start_again(&mut self) {
        let mut cmd = Command::new(&self.mariadbd);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mariadb.pid").display()
            ))
            .arg(format!("--port={}", self.port))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
            .args(["--innodb-buffer-pool-size=32M", "--skip-log-bin"])
            .args([
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
            ])
            // every statement with its Rows_sent, for the tests' evidence
            .args(["--slow-query-log=1", "--long-query-time=0"])
            .arg(format!(
                "--slow-query-log-file={}",
                self.dir.join("slow.log").display()
            ))
            .arg(format!(
                "--log-error={}",
                self.dir.join("error.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.as_mysql {
            cmd.arg("--user=mysql");
        }
        self.child = Some(cmd.spawn().expect("start mariadbd"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.try_root_sql("SELECT 1").is_ok()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("mariadbd exited with {status}:\n{}", self.error_log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "mariadbd did not accept connections within 60 s:\n{}",
                self.error_log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Stops the server (its connections are closed) and waits for it to exit.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = self.try_root_sql("SHUTDOWN");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }

    /// `mysql://bund:…@127.0.0.1:PORT/bund`
    pub(crate) fn url(&self) -> String {
        format!("mysql://bund:{PASSWORD}@127.0.0.1:{}/bund", self.port)
    }

    fn client(&self) -> PathBuf {
        self.mariadbd
            .parent()
            .and_then(|d| d.parent())
            .map(|usr| usr.join("bin").join("mariadb"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| find_program("BUND_TEST_MARIADB", "mariadb", &["/usr/bin"]))
    }

    fn try_root_sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(self.client())
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-u", "root", "-N", "-B", "-e", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// Runs SQL as root (in database `bund` once it exists); returns the tab-separated rows.
    pub(crate) fn root_sql(&self, sql: &str) -> String {
        self.try_root_sql(sql)
            .unwrap_or_else(|e| panic!("mariadb: {sql}: {e}"))
    }

    /// Runs SQL in database `bund`.
    pub(crate) fn sql(&self, sql: &str) -> String {
        self.root_sql(&format!("USE bund; {sql}"))
    }

    /// The slow-query log: every statement with `Rows_sent` and `Rows_examined`.
    pub(crate) fn statement_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("slow.log")).unwrap_or_default()
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
