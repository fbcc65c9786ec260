//! Offline push end to end, through the SDK, against the real server with its real APNs and Xiaomi
//! clients, pointed at a local endpoint that plays both makers' services.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{config, connect_synced, within};
use duet_client::{Client, Event, Platform, PushConfig, SendOptions, elems};
use duet_server::config::FileConfig;
use duet_test_support::TestServer;
use duet_test_support::endpoint::{Answer, Endpoint, Recorded};
use serde_json::json;

const IPHONE_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const XIAOMI_TOKEN: &str = "xiaomi-regid-of-bobs-android-phone-0001";

/// Apple's and Xiaomi's answers to a push they accept.
fn accept(r: &Recorded) -> Answer {
    if r.path().starts_with("/3/device/") {
        Answer::empty(200)
    } else {
        Answer::json(200, json!({"result": "ok", "code": 0, "data": {"id": "m1"}, "trace_id": "t"}))
    }
}

/// A server whose APNs and Xiaomi providers send to `endpoint`.
async fn server(endpoint: &Endpoint, key: &tempfile::NamedTempFile) -> TestServer {
    let toml = format!(
        "[push.apns]\nkey_file = {:?}\nkey_id = \"ABC123DEFG\"\nteam_id = \"TEAM123456\"\ntopic = \"com.example.chat\"\nurl = \"{url}\"\n\
         [push.xiaomi]\napp_secret = \"xiaomi-secret\"\npackage_name = \"com.example.chat\"\nurl = \"{url}\"\n",
        key.path(),
        url = endpoint.url,
    );
    let providers = FileConfig::parse(&toml).expect("the push configuration").push.expect("[push]").providers();
    let server = TestServer::spawn_with(|c| c.push_providers = providers).await;
    server.import(&["alice", "bob", "carol"]).await;
    server.set_profile("alice", "Tag_Profile_IM_Nick", json!("Alice")).await;
    server
}

/// An APNs signing key (PKCS#8 P-256 in PEM), in a file.
fn apns_key() -> tempfile::NamedTempFile {
    let key = rcgen::KeyPair::generate().expect("a P-256 key");
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), key.serialize_pem()).expect("writing the key");
    file
}

async fn device(server: &TestServer, user: &str, platform: Platform, id: &str) -> Client {
    let c = config(&server.base_url(), user, &server.usersig(user), platform).device(id);
    connect_synced(c).await.0
}

/// Waits until `user` is `PushOnline`: the server has seen every connection of the user end.
async fn push_online(server: &TestServer, user: &str) {
    within("waiting for PushOnline", async {
        loop {
            let r = server.rest("openim/query_online_status", json!({"To_Account": [user]})).await;
            if r["QueryResult"][0]["Status"] == "PushOnline" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Waits until `endpoint` has received `n` requests that `pick` selects, and returns them.
async fn received(endpoint: &Endpoint, n: usize, pick: impl Fn(&Recorded) -> bool) -> Vec<Recorded> {
    within("waiting for pushes", async {
        loop {
            let got: Vec<Recorded> = endpoint.requests().into_iter().filter(|r| pick(r)).collect();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

fn to_apns(r: &Recorded) -> bool {
    r.path().starts_with("/3/device/")
}

fn to_xiaomi(r: &Recorded) -> bool {
    r.path() == "/v3/message/regid"
}

async fn send(from: &Client, to: &str, text: &str) {
    from.send_message(to, vec![elems::text(text)], SendOptions::default()).await.expect("sending");
}

#[tokio::test]
async fn each_away_device_gets_one_push_and_a_logged_out_one_none() {
    let endpoint = Endpoint::start(accept).await;
    let key = apns_key();
    let server = server(&endpoint, &key).await;

    // bob's iPhone registers for APNs and his Android phone for Xiaomi; both apps are swiped away.
    let iphone = device(&server, "bob", Platform::IPhone, "bob-iphone").await;
    let apns = PushConfig { provider: "apns".into(), token: IPHONE_TOKEN.into(), ..PushConfig::default() };
    iphone.set_offline_push_config(apns).await.expect("registering the iPhone");
    let android = device(&server, "bob", Platform::Android, "bob-android").await;
    let xiaomi = PushConfig { provider: "xiaomi".into(), token: XIAOMI_TOKEN.into(), ..PushConfig::default() };
    android.set_offline_push_config(xiaomi).await.expect("registering the Android phone");
    drop((iphone, android));
    push_online(&server, "bob").await;

    let alice = device(&server, "alice", Platform::Pc, "alice-pc").await;
    send(&alice, "bob", "hello bob").await;

    let apns = received(&endpoint, 1, to_apns).await;
    assert_eq!(apns[0].path(), format!("/3/device/{IPHONE_TOKEN}"));
    assert_eq!(apns[0].version, axum::http::Version::HTTP_2, "APNs is HTTP/2");
    assert_eq!(apns[0].header("apns-topic"), Some("com.example.chat"));
    assert!(apns[0].header("authorization").is_some_and(|a| a.starts_with("bearer ")));
    let payload = apns[0].json();
    assert_eq!(payload["aps"]["alert"]["title"], "Alice", "{payload}");
    assert_eq!(payload["aps"]["alert"]["body"], "hello bob", "{payload}");
    assert_eq!(payload["aps"]["badge"], 1, "bob's unread count: {payload}");
    let xiaomi = received(&endpoint, 1, to_xiaomi).await;
    assert_eq!(xiaomi[0].header("authorization"), Some("key=xiaomi-secret"));
    assert_eq!(xiaomi[0].form_value("registration_id").as_deref(), Some(XIAOMI_TOKEN));
    assert_eq!(xiaomi[0].form_value("title").as_deref(), Some("Alice"));
    assert_eq!(xiaomi[0].form_value("description").as_deref(), Some("hello bob"));

    // bob comes back: the message itself arrives over the connection.
    let (iphone, events, synced) = connect_synced(
        config(&server.base_url(), "bob", &server.usersig("bob"), Platform::IPhone).device("bob-iphone"),
    )
    .await;
    let offline: Vec<&Event> = synced.iter().filter(|e| matches!(e, Event::NewMessage(_))).collect();
    assert_eq!(offline.len(), 1, "{synced:?}");
    // bob logs out on both phones: no more pushes to either.
    iphone.logout().await.expect("logging out the iPhone");
    drop(events);
    let android = device(&server, "bob", Platform::Android, "bob-android").await;
    android.logout().await.expect("logging out the Android phone");

    // carol, away with a registered iPhone, is the barrier: once her push is out, bob's would be too.
    let carol = device(&server, "carol", Platform::IPhone, "carol-iphone").await;
    let token = "c".repeat(64);
    let apns = PushConfig { provider: "apns".into(), token: token.clone(), ..PushConfig::default() };
    carol.set_offline_push_config(apns).await.expect("registering carol's iPhone");
    drop(carol);
    push_online(&server, "carol").await;
    send(&alice, "bob", "after logout").await;
    send(&alice, "carol", "hello carol").await;
    received(&endpoint, 2, to_apns).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let apns: Vec<String> = endpoint.requests().iter().filter(|r| to_apns(r)).map(|r| r.path().to_owned()).collect();
    assert_eq!(apns, [format!("/3/device/{IPHONE_TOKEN}"), format!("/3/device/{token}")]);
    assert_eq!(endpoint.requests().iter().filter(|r| to_xiaomi(r)).count(), 1);
}

#[tokio::test]
async fn pushes_queued_while_the_endpoint_is_down_go_out_once_after_a_restart() {
    let up = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let (accepting, log) = (up.clone(), accepted.clone());
    let endpoint = Endpoint::start(move |r| {
        if !accepting.load(Ordering::SeqCst) {
            return Answer::json(503, json!({"reason": "ServiceUnavailable"}));
        }
        let body = r.json()["aps"]["alert"]["body"].as_str().unwrap_or_default().to_owned();
        log.lock().unwrap().push(body);
        accept(r)
    })
    .await;
    let key = apns_key();
    let server = server(&endpoint, &key).await;
    let iphone = device(&server, "bob", Platform::IPhone, "bob-iphone").await;
    let apns = PushConfig { provider: "apns".into(), token: IPHONE_TOKEN.into(), ..PushConfig::default() };
    iphone.set_offline_push_config(apns).await.expect("registering");
    drop(iphone);
    push_online(&server, "bob").await;
    let alice = device(&server, "alice", Platform::Pc, "alice-pc").await;
    send(&alice, "bob", "one").await;
    send(&alice, "bob", "two").await;
    // Both tried and refused: queued for a retry.
    received(&endpoint, 2, to_apns).await;
    alice.logout().await.expect("logging out");

    let server = server.restart().await;
    up.store(true, Ordering::SeqCst);
    // The retries fall due on the server's clock (2 s, then 4 s, ... after each refusal).
    within("waiting for the queued pushes", async {
        while accepted.lock().unwrap().len() < 2 {
            server.clock.advance_secs(5);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    // Nothing is sent again, however long the server waits.
    server.clock.advance_secs(3600);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut sent = accepted.lock().unwrap().clone();
    sent.sort_unstable();
    assert_eq!(sent, ["one", "two"], "each queued push went out exactly once");
    assert!(endpoint.requests().iter().all(|r| r.path() == format!("/3/device/{IPHONE_TOKEN}")));
}

#[tokio::test]
async fn a_device_in_the_background_is_pushed_while_connected_and_says_so_again_after_a_reconnect() {
    let endpoint = Endpoint::start(accept).await;
    let key = apns_key();
    let server = server(&endpoint, &key).await;
    let proxy = duet_test_support::Proxy::start(server.addr).await;
    let bob_cfg = config(&proxy.base_url(), "bob", &server.usersig("bob"), Platform::IPhone).device("bob-iphone");
    let (bob, mut bob_events, _) = connect_synced(bob_cfg).await;
    let apns = PushConfig { provider: "apns".into(), token: IPHONE_TOKEN.into(), ..PushConfig::default() };
    bob.set_offline_push_config(apns).await.expect("registering");
    bob.do_background(0).await.expect("going to the background");
    let alice = device(&server, "alice", Platform::Pc, "alice-pc").await;

    send(&alice, "bob", "one").await;
    assert_eq!(common::next_message(&mut bob_events).await.text(), "one", "over the connection");
    assert_eq!(received(&endpoint, 1, to_apns).await[0].json()["aps"]["alert"]["body"], "one", "and as a push");

    // A new connection starts in the foreground: the SDK tells the server again that the app is not.
    proxy.sever();
    common::until_sync_complete(&mut bob_events).await;
    send(&alice, "bob", "two").await;
    assert_eq!(common::next_message(&mut bob_events).await.text(), "two");
    assert_eq!(received(&endpoint, 2, to_apns).await[1].json()["aps"]["alert"]["body"], "two");

    // Back in the foreground: the connection only.
    bob.do_foreground().await.expect("coming back");
    send(&alice, "bob", "three").await;
    assert_eq!(common::next_message(&mut bob_events).await.text(), "three");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(endpoint.requests().iter().filter(|r| to_apns(r)).count(), 2, "no push in the foreground");
}

#[tokio::test]
async fn a_quiet_conversation_and_a_do_not_disturb_window_get_no_push() {
    let endpoint = Endpoint::start(accept).await;
    let key = apns_key();
    let server = server(&endpoint, &key).await;
    let iphone = device(&server, "bob", Platform::IPhone, "bob-iphone").await;
    let apns = PushConfig { provider: "apns".into(), token: IPHONE_TOKEN.into(), ..PushConfig::default() };
    iphone.set_offline_push_config(apns).await.expect("registering the iPhone");
    // bob quiets carol's conversation, then sets a window every day from now for an hour.
    let quiet = duet_client::ConversationChange { receive_opt: Some(2), ..Default::default() };
    iphone.update_conversation("carol", quiet).await.expect("quieting carol");
    let now = duet_test_support::T0_MS / 1000; // the test clock has not moved
    let start_of_day = now.rem_euclid(86_400) as u32;
    let window =
        duet_client::DndSetting { receive_opt: 2, start_of_day: Some(start_of_day), start_time: None, duration: 3600 };
    iphone.set_dnd(window).await.expect("setting the window");
    assert_eq!(iphone.dnd().await.unwrap(), window);
    drop(iphone);
    push_online(&server, "bob").await;

    let alice = device(&server, "alice", Platform::Pc, "alice-pc").await;
    let carol = device(&server, "carol", Platform::Pc, "carol-pc").await;
    send(&carol, "bob", "quiet conversation").await;
    send(&alice, "bob", "inside the window").await;
    // An hour later the window is over: alice's next message is pushed, carol's still is not.
    server.clock.advance_secs(3600);
    send(&carol, "bob", "still quiet").await;
    send(&alice, "bob", "after the window").await;
    let pushed = received(&endpoint, 1, to_apns).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies: Vec<String> = endpoint
        .requests()
        .iter()
        .filter(|r| to_apns(r))
        .map(|r| r.json()["aps"]["alert"]["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(bodies, ["after the window"], "{:?}", pushed.len());

    // Turned off: pushed again.
    let iphone = device(&server, "bob", Platform::IPhone, "bob-iphone").await;
    iphone.set_dnd(duet_client::DndSetting::default()).await.expect("turning the window off");
    assert_eq!(iphone.dnd().await.unwrap().receive_opt, 0);
    let bad = duet_client::DndSetting { receive_opt: 2, start_of_day: Some(86_400), ..Default::default() };
    assert_eq!(iphone.set_dnd(bad).await.unwrap_err().code(), Some(6017));
    drop(iphone);
    push_online(&server, "bob").await;
    server.clock.advance_secs(86_400 - 3600);
    send(&alice, "bob", "window off").await;
    received(&endpoint, 2, to_apns).await;
}
