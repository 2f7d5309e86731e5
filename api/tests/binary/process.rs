//! Starting and stopping the real `finetune-lab` binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_finetune-lab");

/// `finetune-lab` with the test's database (and an artifact folder of its
/// own) and quiet logs.
pub fn command(db_url: &str) -> Command {
    let artifacts = std::env::temp_dir()
        .join("ftl-tests")
        .join(format!("artifacts-{:x}", fnv(db_url)));
    let mut c = Command::new(BIN);
    c.env_remove("FTL_CONFIG")
        .env("FTL__DATABASE__URL", db_url)
        .env("FTL__ARTIFACTS__ROOT", artifacts)
        .env("FTL__LOG__LEVEL", "warn")
        .env("FTL__PROJECTIONS__POLL_MS", "50")
        .env("FTL__PROJECTIONS__READY_MAX_LAG", "0")
        .stderr(Stdio::inherit());
    c
}

pub fn run_cli(db_url: &str, args: &[&str]) -> String {
    let out = command(db_url).args(args).output().unwrap();
    assert!(out.status.success(), "finetune-lab {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

pub struct ServerProcess {
    pub child: Child,
    pub base: String,
}

/// A failed assertion must not leave the server running.
impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed (SIGKILL) when dropped, so a failed test leaves
/// nothing running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ServerProcess {
    /// Starts `finetune-lab serve` on an ephemeral port and waits for `/readyz`.
    pub async fn start(db_url: &str, http: &reqwest::Client) -> Self {
        Self::start_with(db_url, http, |c| c).await
    }

    /// `start`, with the command `adjust`ed first (extra environment).
    pub async fn start_with(
        db_url: &str,
        http: &reqwest::Client,
        adjust: impl FnOnce(&mut Command) -> &mut Command,
    ) -> Self {
        let mut base = command(db_url);
        let mut child = adjust(&mut base)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                    let port: u16 = rest.split('/').next().unwrap().parse().unwrap();
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "server never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ServerProcess { child, base }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the process must exit cleanly within the shutdown timeout.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "graceful shutdown exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
