//! A real S3-compatible server for tests: moto (PyPI's `moto[server]`) started on a free port of
//! 127.0.0.1, and stopped when dropped.
//!
//! The tests that use it run when `DUET_TEST_S3=1` ([`enabled`]); without it they say so and pass.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::S3Location;

/// Whether the S3 tests run (`DUET_TEST_S3=1`); if not, prints that `test` is skipped.
pub fn enabled(test: &str) -> bool {
    let on = std::env::var("DUET_TEST_S3").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("skipping {test}: set DUET_TEST_S3=1 to run it against moto (pip install 'moto[server]')");
    }
    on
}

/// A moto server; killed when dropped.
pub struct Moto {
    endpoint: String,
    _child: Child,
}

/// How long moto may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl Moto {
    /// Starts `python3 -m moto.server` on port 0 and waits for the line saying where it listens. Panics,
    /// saying how to install it, if moto cannot be imported.
    pub async fn start() -> Moto {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let mut child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {python} for moto: {e}; install moto with pip install 'moto[server]'")
            });
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let mut said = String::new();
        let endpoint = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await.expect("reading moto's output") {
                if let Some(at) = line.find("Running on http://") {
                    return Some(line[at + "Running on ".len()..].trim().to_owned());
                }
                said.push_str(&line);
                said.push('\n');
            }
            None
        })
        .await
        .expect("moto did not say where it listens within a minute");
        let Some(endpoint) = endpoint else {
            if said.contains("No module named") {
                panic!("moto is not installed: pip install 'moto[server]'\n{said}");
            }
            panic!("moto stopped before listening:\n{said}");
        };
        // moto logs each request: keep reading, so that a full pipe never stalls it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Moto { endpoint, _child: child }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates the bucket `bucket` and returns `s3://<bucket>/<prefix>` with this server's settings.
    pub async fn bucket(&self, bucket: &str, prefix: &str) -> S3Location {
        let resp = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .expect("creating a bucket on moto");
        assert!(resp.status().is_success(), "creating bucket {bucket}: {}", resp.status());
        S3Location::parse(&format!("s3://{bucket}/{prefix}")).expect("a bucket name").with_vars(self.vars())
    }

    /// The AWS variables that point a client at this server.
    pub fn vars(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec()
    }

    /// The keys of the objects in `bucket`.
    pub async fn objects(&self, bucket: &str) -> Vec<String> {
        self.list(&format!("{}/{bucket}?list-type=2", self.endpoint), "Key").await
    }

    /// The ids of the multipart uploads begun in `bucket` and neither completed nor aborted.
    pub async fn multipart_uploads(&self, bucket: &str) -> Vec<String> {
        self.list(&format!("{}/{bucket}?uploads", self.endpoint), "UploadId").await
    }

    /// The texts of the `<tag>` elements of the XML at `url` (one page is enough for tests).
    async fn list(&self, url: &str, tag: &str) -> Vec<String> {
        let resp = reqwest::get(url).await.expect("listing on moto");
        assert!(resp.status().is_success(), "listing {url}: {}", resp.status());
        let body = resp.text().await.expect("a listing");
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        body.split(&open).skip(1).filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_owned())).collect()
    }
}
