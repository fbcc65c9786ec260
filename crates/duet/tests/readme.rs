//! The README against the binary it describes: every environment variable a command reads is documented,
//! and the copy-paste examples work when pasted twice.

use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap()
}

/// The `[env: NAME...]` variables `duet <args> --help` lists.
fn env_vars(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_duet")).args(args).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    help.split("[env: ").skip(1).map(|rest| rest.split(['=', ']']).next().unwrap().to_owned()).collect()
}

#[test]
fn every_environment_variable_the_commands_read_is_in_the_readme() {
    let readme = readme();
    let client = env_vars(&["client"]);
    for var in ["DUET_SERVER", "DUET_USER", "DUET_USERSIG"] {
        assert!(client.iter().any(|v| v == var), "`duet client` reads {var}: {client:?}");
    }
    for args in [&["client"][..], &["serve"], &["usersig"]] {
        for var in env_vars(args) {
            assert!(readme.contains(&format!("`{var}`")), "README does not mention `{var}` (read by duet {args:?})");
        }
    }
}

#[test]
fn the_sendmsg_example_sends_a_new_message_each_time_it_is_pasted() {
    let readme = readme();
    let example = readme.split("openim/sendmsg").nth(1).expect("README has a sendmsg example");
    let body = &example[..example.find("}]}'").expect("the example's body ends")];
    let random = body.split("\"MsgRandom\":").nth(1).expect("the example sets MsgRandom").trim_start();
    assert!(
        !random.starts_with(|c: char| c.is_ascii_digit()),
        "a fixed MsgRandom makes a second run a duplicate that stores nothing: {body}"
    );
    assert!(readme.contains("dedup") || readme.contains("duplicate"), "README says what dedup does");
}
