//! Demo mode as `duet serve` starts it (issue 18): with no configuration at all the server says that
//! demo mode is on, where, and what it allows, and serves the page there; a configured secret key turns
//! it off unless asked for, and so does a config file.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `duet serve ARGS` in `cwd` on an ephemeral port with no `DUET_*` variable but `env`; returns its
/// address and what it printed on stderr until it was serving, then (after `also`) stops it.
fn serve(cwd: &Path, args: &[&str], env: &[(&str, &str)], also: impl FnOnce(&str)) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duet"));
    cmd.current_dir(cwd);
    for (var, _) in std::env::vars() {
        if var.starts_with("DUET_") {
            cmd.env_remove(var);
        }
    }
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("addr=").nth(1) {
                let _ = tx.send(addr.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(20));
    if let Ok(addr) = &addr {
        also(addr);
    }
    child.kill().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    child.wait().unwrap();
    assert!(addr.is_ok(), "the server did not report its address: {stderr}");
    stderr
}

fn status(url: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async { reqwest::get(url).await.unwrap().status().as_u16() })
}

fn demo_line(stderr: &str) -> Option<&str> {
    stderr.lines().find(|l| l.starts_with("duet: demo on: "))
}

#[test]
fn serve_with_no_configuration_says_demo_mode_is_on_and_serves_the_page_at_the_url_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = None;
    let stderr = serve(dir.path(), &[], &[], |addr| {
        let port = addr.rsplit(':').next().unwrap().to_owned();
        served = Some((port.clone(), status(&format!("http://127.0.0.1:{port}/demo"))));
    });
    let (port, status) = served.unwrap();
    assert_eq!(status, 200);
    let line = demo_line(&stderr).unwrap_or_else(|| panic!("no demo line: {stderr}"));
    assert!(line.starts_with(&format!("duet: demo on: http://127.0.0.1:{port}/demo — ")), "{line}");
    for says in ["anyone who can reach this server", "UserSig for any user (except admins)", "--no-demo", "secret key"]
    {
        assert!(line.contains(says), "says {says:?}: {line}");
    }
}

#[test]
fn a_configured_key_or_config_file_turns_demo_mode_off_unless_it_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let off = |args: &[&str], env: &[(&str, &str)]| {
        let mut code = 0;
        let stderr = serve(dir.path(), args, env, |addr| code = status(&format!("http://{addr}/demo")));
        assert!(demo_line(&stderr).is_none(), "{args:?} {env:?}: {stderr}");
        assert_eq!(code, 404, "{args:?} {env:?}");
    };
    off(&["--secret-key", "k"], &[]);
    off(&[], &[("DUET_SECRET_KEY", "k")]);
    off(&["--no-demo"], &[]);
    off(&[], &[("DUET_DEMO", "0")]);
    std::fs::write(dir.path().join("duet.toml"), "sdkappid = 1400000001\n").unwrap();
    off(&["--config", "duet.toml"], &[]);
    // A generated key counts as none: the second start, over the key the first one saved, is a demo too.
    assert!(dir.path().join("duet-data/secret_key").exists());
    assert!(demo_line(&serve(dir.path(), &[], &[], |_| {})).is_some());

    let on = |args: &[&str], env: &[(&str, &str)]| {
        let stderr = serve(dir.path(), args, env, |addr| assert_eq!(status(&format!("http://{addr}/demo")), 200));
        let line = demo_line(&stderr).unwrap_or_else(|| panic!("{args:?} {env:?}: no demo line: {stderr}"));
        assert!(line.ends_with("turn it off with --no-demo"), "asked for, so a key would not turn it off: {line}");
    };
    on(&["--secret-key", "k", "--demo"], &[]);
    on(&["--secret-key", "k"], &[("DUET_DEMO", "1")]);
    std::fs::write(dir.path().join("demo.toml"), "secret_key = \"k\"\ndemo = true\n").unwrap();
    on(&["--config", "demo.toml"], &[]);
    // Flags win over the environment, which wins over the file.
    off(&["--config", "demo.toml"], &[("DUET_DEMO", "false")]);
    off(&["--no-demo"], &[("DUET_DEMO", "1")]);
}
