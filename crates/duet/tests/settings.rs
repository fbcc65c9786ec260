//! The binary's configuration and error reporting as a user meets them: `usersig` never makes up a key,
//! a bad environment value is blamed on its variable, booleans take 1/0/true/false, errors are one line
//! without a backtrace, piped logs have no colour codes, and paths in the TOML file are relative to it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn duet(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duet"));
    cmd.current_dir(cwd);
    for var in ["DUET_CONFIG", "DUET_DATA", "DUET_SDKAPPID", "DUET_SECRET_KEY", "DUET_FRIENDS_ONLY", "NO_COLOR"] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_BACKTRACE", "1");
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one line an expected error prints.
fn error_line(out: &Output) -> String {
    let text = stderr(out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line, no backtrace: {text}");
    assert!(lines[0].starts_with("error: "), "{text}");
    assert!(!text.to_lowercase().contains("backtrace"), "{text}");
    lines[0].to_owned()
}

/// Runs `duet serve ARGS` in `cwd` on an ephemeral port and returns its log lines up to the one with its
/// address; then stops it.
fn serve_log(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let mut child: Child = duet(cwd)
        .args(["serve", "--listen", "127.0.0.1:0", "--secret-key", "k"])
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
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                let done = line.contains("127.0.0.1:");
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("the server did not report its address: {lines:?} {}", stderr(&out));
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    lines
}

#[test]
fn usersig_without_a_key_fails_saying_where_it_looked_and_generates_none() {
    let dir = tempfile::tempdir().unwrap();
    let out = duet(dir.path()).args(["usersig", "--user", "bob"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let line = error_line(&out);
    let looked = dir.path().canonicalize().unwrap().join("duet-data").join("secret_key");
    assert!(line.contains(&looked.display().to_string()), "says where it looked: {line}");
    for hint in ["--data", "DUET_DATA", "--secret-key", "DUET_SECRET_KEY"] {
        assert!(line.contains(hint), "mentions {hint}: {line}");
    }
    assert!(!dir.path().join("duet-data").exists(), "no key was generated");

    // With the server's data directory (where `serve` generated its key) it signs with that key.
    let data = dir.path().join("srv");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("secret_key"), "the-servers-key\n").unwrap();
    let out = duet(dir.path()).args(["usersig", "--user", "bob", "--data", "srv"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sig = String::from_utf8(out.stdout).unwrap();
    duet_core::usersig::verify("the-servers-key", 1_400_000_000, "bob", sig.trim(), now()).unwrap();
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn usersig_help_lists_only_what_usersig_uses() {
    let dir = tempfile::tempdir().unwrap();
    let out = duet(dir.path()).args(["usersig", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for used in ["--user", "--expire", "--data", "--config", "--sdkappid", "--secret-key"] {
        assert!(help.contains(used), "{used} is listed: {help}");
    }
    for unused in ["--admins", "--durability", "--friends-only", "--blacklist-check", "--listen"] {
        assert!(!help.contains(unused), "{unused} is not usersig's: {help}");
    }
}

#[test]
fn an_invalid_environment_value_is_blamed_on_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = duet(dir.path())
        .args(["usersig", "--user", "bob", "--secret-key", "k"])
        .env("DUET_SDKAPPID", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(line.contains("DUET_SDKAPPID") && line.contains("many") && !line.contains("--sdkappid"), "{line}");

    let out = duet(dir.path()).args(["serve", "--listen", "127.0.0.1:0"]).env("DUET_FRIENDS_ONLY", "yes").output();
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(line.contains("DUET_FRIENDS_ONLY") && line.contains("yes"), "{line}");
    assert!(!line.contains("--friends-only"), "{line}");
    assert!(line.contains("1, 0, true or false"), "{line}");

    // The same value given as a flag is blamed on the flag.
    let out = duet(dir.path()).args(["serve", "--friends-only", "yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--friends-only"), "{}", stderr(&out));
}

#[test]
fn booleans_take_1_0_true_and_false_as_flags_and_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, env) in [(Some("1"), None), (None, Some("0")), (Some("true"), Some("1")), (None, Some("FALSE"))] {
        let mut args = vec!["--data", "d"];
        args.extend(flag.map(|v| ["--friends-only", v]).into_iter().flatten());
        let env: Vec<(&str, &str)> = env.map(|v| ("DUET_FRIENDS_ONLY", v)).into_iter().collect();
        serve_log(dir.path(), &args, &env);
    }
}

#[test]
fn expected_errors_are_one_line_without_a_backtrace_whatever_rust_backtrace_says() {
    let dir = tempfile::tempdir().unwrap();
    // No server there.
    let args = ["client", "--server", "http://127.0.0.1:1", "--user", "bob", "--usersig", "x", "send"];
    let out = duet(dir.path()).args(args).args(["--to", "alice", "--text", "hi"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(line.starts_with("error: connecting: "), "{line}");

    let out = duet(dir.path()).args(["usersig", "--user", "bob", "--config", "missing.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(error_line(&out).starts_with("error: reading missing.toml: "));
}

#[test]
fn piped_logs_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let lines = serve_log(dir.path(), &["--data", "d"], &[]);
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "an escape code in a piped log: {line:?}");
    }
}

#[test]
fn relative_paths_in_the_toml_file_are_relative_to_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("etc");
    std::fs::create_dir_all(conf.join("state")).unwrap();
    std::fs::write(conf.join("state").join("secret_key"), "key-beside-the-file\n").unwrap();
    std::fs::write(conf.join("duet.toml"), "data = \"state\"\n[media]\ndir = \"blobs\"\n").unwrap();
    let elsewhere = dir.path().join("home");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = duet(&elsewhere).args(["usersig", "--user", "bob", "--config", "../etc/duet.toml"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sig = String::from_utf8(out.stdout).unwrap();
    duet_core::usersig::verify("key-beside-the-file", 1_400_000_000, "bob", sig.trim(), now()).unwrap();
    assert!(!elsewhere.join("state").exists());

    // The server puts its data and media there too.
    serve_log(&elsewhere, &["--config", "../etc/duet.toml"], &[]);
    assert!(conf.join("blobs").exists(), "the media directory is beside the file");
    assert!(conf.join("state").read_dir().unwrap().count() > 1, "the store is in the data directory");
    assert_eq!(elsewhere.read_dir().unwrap().count(), 0, "nothing in the working directory");
}

#[test]
fn tls_files_named_in_the_toml_file_are_relative_to_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("etc");
    std::fs::create_dir_all(&conf).unwrap();
    let certs = duet_test_support::TestCerts::generate();
    std::fs::write(conf.join("cert.pem"), &certs.cert_pem).unwrap();
    std::fs::write(conf.join("key.pem"), &certs.key_pem).unwrap();
    std::fs::write(conf.join("duet.toml"), "data = \"state\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n")
        .unwrap();
    let elsewhere = dir.path().join("home");
    std::fs::create_dir(&elsewhere).unwrap();
    let log = serve_log(&elsewhere, &["--config", "../etc/duet.toml"], &[]).join("\n");
    assert!(log.contains("tls=true"), "served with the files beside the config file: {log}");
}

#[test]
fn the_http_table_and_the_cap_flags_reach_the_server_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "[http]\nmax_connections = 500\nmax_connections_per_ip = 50\nheader_timeout_secs = 5\n";
    std::fs::write(dir.path().join("duet.toml"), toml).unwrap();
    let lines = serve_log(dir.path(), &["--config", "duet.toml"], &[]);
    let serving = lines.last().unwrap();
    assert!(serving.contains("max_connections=500 max_connections_per_ip=50"), "{serving}");
    // A flag wins over the file, and the per-address default follows the total.
    let lines = serve_log(dir.path(), &["--max-connections", "300"], &[("DUET_MAX_CONNECTIONS_PER_IP", "7")]);
    assert!(lines.last().unwrap().contains("max_connections=300 max_connections_per_ip=7"), "{lines:?}");
    let lines = serve_log(dir.path(), &["--max-connections", "300"], &[]);
    assert!(lines.last().unwrap().contains("max_connections=300 max_connections_per_ip=150"), "{lines:?}");

    std::fs::write(dir.path().join("bad.toml"), "[http]\nidle_timeout_secs = 0\n").unwrap();
    let out = duet(dir.path()).args(["serve", "--secret-key", "k", "--config", "bad.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(error_line(&out).contains("http.idle_timeout_secs must be between 1 and 86400"), "{}", stderr(&out));
    let out = duet(dir.path()).args(["serve", "--secret-key", "k", "--max-connections", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(error_line(&out).contains("max_connections must be at least 1"), "{}", stderr(&out));
}
