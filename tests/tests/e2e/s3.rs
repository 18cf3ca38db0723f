//! `s3://` sources against a real S3-compatible object store (SeaweedFS, built by
//! `scripts/test-deps.sh`): Bund reads a bureau's Parquet files from a bucket with the
//! endpoint and credentials taken from the environment variables the catalog names.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{
    RESIDENTS, Server, bureau_entries, column_strings, example_data, free_port, scratch_dir,
};

const BUCKET: &str = "bureau-lake";

/// `weed mini` on free ports, killed when dropped.
struct SeaweedFs {
    child: Child,
    s3_port: u16,
}

impl SeaweedFs {
    fn start() -> Self {
        let weed = std::env::var("BUND_TEST_WEED").unwrap_or_else(|_| {
            panic!("BUND_TEST_WEED is not set: run `bash scripts/test-deps.sh` and `source .cache/env.sh` (or use `bash scripts/test.sh`)")
        });
        let dir = scratch_dir("seaweedfs");
        let s3_port = free_port();
        let mut cmd = Command::new(weed);
        cmd.arg("mini")
            .arg(format!("-dir={}", dir.display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                &format!("-bucket={BUCKET}"),
                "-admin.ui=false",
                "-admin.port.legacy=0",
            ])
            .arg(format!("-s3.port={s3_port}"));
        for flag in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "webdav.port",
            "admin.port",
            "admin.port.grpc",
        ] {
            cmd.arg(format!("-{flag}={}", free_port()));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start weed mini");
        let weed = Self { child, s3_port };
        let deadline = Instant::now() + Duration::from_secs(120);
        while weed
            .http("GET", &format!("/{BUCKET}/"), &[])
            .map(|(code, _)| code)
            != Some(200)
        {
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not serve bucket {BUCKET} within 120 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        weed
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// One plain HTTP/1.1 request; the store accepts anonymous writes in this setup.
    fn http(&self, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.s3_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.s3_port,
            body.len()
        );
        s.write_all(head.as_bytes()).ok()?;
        s.write_all(body).ok()?;
        let mut response = Vec::new();
        s.read_to_end(&mut response).ok()?;
        let code = std::str::from_utf8(response.get(9..12)?)
            .ok()?
            .parse()
            .ok()?;
        Some((code, response))
    }

    fn upload_dir(&self, local: &Path, prefix: &str) -> usize {
        let mut n = 0;
        for entry in std::fs::read_dir(local).expect("read data dir") {
            let path = entry.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let body = std::fs::read(&path).expect("read file");
            let (code, _) = self
                .http("PUT", &format!("/{BUCKET}/{prefix}/{name}"), &body)
                .expect("PUT");
            assert_eq!(code, 200, "PUT {prefix}/{name}");
            n += 1;
        }
        n
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn parquet_on_s3_compatible_storage_is_served_like_local_files() {
    let weed = SeaweedFs::start();
    assert!(weed.upload_dir(&example_data().join("police/residents"), "police/residents") > 0);

    let config = scratch_dir("s3-config");
    // The example's roles and principals, with one grant: this catalog has one table.
    let example = std::fs::read_to_string(
        crate::harness::repo_root().join("examples/shanghai/security.toml"),
    )
    .unwrap();
    let principals = &example[..example.find("\n[[grant]]").expect("grants in the example")];
    std::fs::write(
        config.join("security.toml"),
        format!("{principals}\n[[grant]]\nroles = [\"admin\"]\nschemas = [\"police\"]\n"),
    )
    .unwrap();
    std::fs::write(
        config.join("server.toml"),
        format!("audit_dir = \"{}\"\n", config.join("audit").display()),
    )
    .unwrap();
    let s3 = format!(
        r#"
[[s3]]
bucket = "{BUCKET}"
endpoint_env = "E2E_S3_ENDPOINT"
region_env = "E2E_S3_REGION"
access_key_id_env = "E2E_S3_KEY_ID"
secret_access_key_env = "E2E_S3_SECRET"
allow_http = true
"#
    );
    let police = bureau_entries(
        "police",
        &[],
        &[(
            "residents",
            &format!("kind = \"parquet\", location = \"s3://{BUCKET}/police/residents/\""),
            "",
        )],
    );
    std::fs::write(config.join("catalog.toml"), format!("{s3}{police}")).unwrap();
    let endpoint = weed.endpoint();
    let env = [
        ("E2E_S3_ENDPOINT", endpoint.as_str()),
        ("E2E_S3_REGION", "us-east-1"),
        ("E2E_S3_KEY_ID", "bund-e2e"),
        ("E2E_S3_SECRET", "not-a-secret"),
    ];
    let server = Server::start_with_env(&config, &env);
    let mut c = server.login("admin").await;
    let b = c
        .query("SELECT count(*), count(DISTINCT id_card) FROM police.residents")
        .await
        .unwrap();
    assert_eq!(column_strings(&b, 0), vec![RESIDENTS.to_string()]);
    assert_eq!(column_strings(&b, 1), vec![RESIDENTS.to_string()]);

    // The same rows as the local files give.
    let local = Server::start();
    let mut l = local.login("admin").await;
    let sql = "SELECT id_card, name, district_code FROM police.residents ORDER BY id_card LIMIT 20";
    let remote_rows = c.query(sql).await.unwrap();
    let local_rows = l.query(sql).await.unwrap();
    for col in 0..3 {
        assert_eq!(
            column_strings(&remote_rows, col),
            column_strings(&local_rows, col)
        );
    }

    // A missing variable is a configuration error naming it, not a connection attempt.
    let out = Command::new(crate::harness::bund_bin())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("environment variable `E2E_S3_ENDPOINT` is not set"),
        "{text}"
    );
}
