//! Runs the real `duet` binary for the tests that need a process of their own (killing it, measuring its
//! memory).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `duet serve` on an ephemeral port over `data` with the given app identity, and returns it with
/// its address, read from its log.
#[allow(dead_code, reason = "not every test binary starts it without arguments")]
pub fn start(data: &std::path::Path, sdkappid: u64, key: &str) -> (Child, String) {
    start_with(data, sdkappid, key, &[])
}

/// [`start`] with more arguments for `duet serve`.
pub fn start_with(data: &std::path::Path, sdkappid: u64, key: &str, args: &[&str]) -> (Child, String) {
    start_env(data, sdkappid, key, args, &[])
}

/// [`start_with`] with more environment variables.
pub fn start_env(
    data: &std::path::Path,
    sdkappid: u64,
    key: &str,
    args: &[&str],
    envs: &[(String, String)],
) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
        // Text lines unless the test asks otherwise: the address is read from them.
        .env_remove("DUET_LOG_FORMAT")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .env("DUET_SDKAPPID", sdkappid.to_string())
        .env("DUET_SECRET_KEY", key)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting duet");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("addr=").nth(1) {
                let _ = tx.send(addr.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(20)).expect("duet did not report its address");
    (child, addr)
}

/// The resident set size of `pid`, in bytes (`VmRSS` of `/proc/<pid>/status`).
#[allow(dead_code, reason = "not every test binary measures memory")]
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/<pid>/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kb * 1024
}

pub mod proxy;
