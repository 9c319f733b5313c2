//! A real S3-compatible server on loopback: `s3s-fs` (from crates.io, installed by `.ci/run`),
//! found through AURORA_TEST_S3FS, serving a fresh directory with one bucket.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "aurora-test";
pub const SECRET_KEY: &str = "aurora-test-secret";
pub const BUCKET: &str = "blobs";

pub struct S3Server {
    pub endpoint: String,
    /// Where the bucket's objects are, as files.
    pub root: tempfile::TempDir,
    child: Child,
}

impl S3Server {
    /// Starts one; `None` (after a printed notice) when AURORA_TEST_S3FS is not set.
    pub fn start() -> Option<S3Server> {
        let Ok(binary) = std::env::var("AURORA_TEST_S3FS") else {
            println!("SKIPPED (S3): AURORA_TEST_S3FS (the path of an s3s-fs binary) is not set");
            return None;
        };
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "s3s-fs did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(S3Server { endpoint: format!("http://127.0.0.1:{port}"), root, child })
    }

    /// The server's settings for this store.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PDS_BLOBSTORE_S3_BUCKET", BUCKET.to_owned()),
            ("PDS_BLOBSTORE_S3_REGION", "us-east-1".to_owned()),
            ("PDS_BLOBSTORE_S3_ENDPOINT", self.endpoint.clone()),
            ("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "true".to_owned()),
            ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ]
    }

    /// Every object's key in the bucket.
    pub fn keys(&self) -> Vec<String> {
        let bucket = self.root.path().join(BUCKET);
        let mut found = Vec::new();
        let mut stack = vec![bucket.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(relative) = path.strip_prefix(&bucket) {
                    let key = relative.to_string_lossy().into_owned();
                    // s3s-fs keeps its own metadata beside the objects.
                    if !key.starts_with(".") && !key.contains("/.") {
                        found.push(key);
                    }
                }
            }
        }
        found.sort();
        found
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
