//! The after-event callbacks against a backend the test starts: each command's body as Tencent sends it,
//! the event id header, and the outbox's guarantee: a backend that is down while messages are sent and
//! the server restarts gets every event once it is back, each once, in order per user.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duet_callback::{CallbacksConfig, EVENT_ID_HEADER};
use duet_test_support::endpoint::{Answer, Endpoint, Recorded};
use duet_test_support::{TestServer, WsClient, text};
use serde_json::json;

fn ok() -> Answer {
    Answer::json(200, json!({"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}))
}

async fn server(backend: &Endpoint, commands: Option<&[&str]>) -> TestServer {
    let mut callbacks = CallbacksConfig::new(format!("{}/im", backend.url));
    callbacks.commands = commands.map(|c| c.iter().map(|c| c.to_string()).collect());
    let server = TestServer::spawn_with(|c| c.callbacks = Some(callbacks)).await;
    server.import(&["alice", "bob"]).await;
    server
}

fn query(r: &Recorded, key: &str) -> String {
    form_urlencoded::parse(r.uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Waits until the backend got `n` calls of `command` (at most 10 s); returns them in arrival order.
async fn calls(backend: &Endpoint, command: &str, n: usize) -> Vec<Recorded> {
    for _ in 0..200 {
        let got: Vec<Recorded> =
            backend.requests().into_iter().filter(|r| query(r, "CallbackCommand") == command).collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} {command} callbacks within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_after_event_carries_tencents_query_and_body() {
    // The before-send callback rewrites "rewrite": the after-send callback sees what was stored.
    let backend = Endpoint::start(|r| {
        if query(r, "CallbackCommand") == "C2C.CallbackBeforeSendMsg" && r.json()["MsgBody"] == text("rewrite") {
            return Answer::json(200, json!({"ErrorCode": 0, "MsgBody": text("re***te")}));
        }
        ok()
    })
    .await;
    let server = server(&backend, None).await;
    let mut bob = WsClient::login(&server, "bob").await;
    let login = calls(&backend, "State.StateChange", 1).await;
    assert_eq!(
        login[0].json()["Info"],
        json!({"Action": "Login", "To_Account": "bob", "Reason": "Register"}),
        "{:?}",
        login[0].json()
    );
    assert_eq!((query(&login[0], "OptPlatform"), query(&login[0], "ClientIP")), ("Android".into(), "127.0.0.1".into()));

    let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 5, "MsgBody": text("rewrite")});
    let sent = server.rest("openim/sendmsg", body).await;
    assert_eq!(sent["ErrorCode"], 0, "{sent}");
    let after = calls(&backend, "C2C.CallbackAfterSendMsg", 1).await;
    let a = after[0].json();
    assert_eq!(query(&after[0], "OptPlatform"), "RESTAPI");
    assert_eq!((a["From_Account"].as_str(), a["To_Account"].as_str()), (Some("alice"), Some("bob")));
    assert_eq!(a["MsgKey"], sent["MsgKey"], "the key as stored, with the MsgSeq the store picked");
    assert_eq!(a["MsgTime"], sent["MsgTime"]);
    assert_eq!(a["MsgBody"], text("re***te"), "the body as the before-send callback rewrote it");
    assert_eq!((a["SendMsgResult"].as_i64(), a["UnreadMsgNum"].as_i64()), (Some(0), Some(1)), "{a}");
    assert_eq!((a["OnlineOnlyFlag"].as_i64(), a["ErrorInfo"].as_str()), (Some(0), Some("send msg succeed")));
    assert!(a["EventTime"].as_i64().is_some() && a["MsgRandom"] == 5, "{a}");
    let id = after[0].header(EVENT_ID_HEADER).expect("the event id header").to_owned();
    assert!(id.parse::<u64>().is_ok(), "{id}");

    // A client's send names its platform and address.
    let mut alice = WsClient::login(&server, "alice").await;
    assert_eq!(alice.send("bob", 6, text("hi")).await["op"], "sent");
    let after = calls(&backend, "C2C.CallbackAfterSendMsg", 2).await;
    assert_eq!((query(&after[1], "OptPlatform"), query(&after[1], "ClientIP")), ("Android".into(), "127.0.0.1".into()));
    assert_eq!(after[1].json()["UnreadMsgNum"], 2);

    let withdraw = json!({"From_Account": "alice", "To_Account": "bob", "MsgKey": sent["MsgKey"]});
    assert_eq!(server.rest("openim/admin_msgwithdraw", withdraw).await["ErrorCode"], 0);
    let w = calls(&backend, "C2C.CallbackAfterMsgWithDraw", 1).await[0].json();
    assert_eq!(w["MsgKey"], sent["MsgKey"]);
    assert_eq!(
        (w["From_Account"].as_str(), w["To_Account"].as_str(), w["UnreadMsgNum"].as_i64()),
        (Some("alice"), Some("bob"), Some(1))
    );

    assert_eq!(bob.request(json!({"op": "mark_read", "peer": "alice"})).await["op"], "ok");
    let report = calls(&backend, "C2C.CallbackAfterMsgReport", 1).await;
    let r = report[0].json();
    assert_eq!((r["Report_Account"].as_str(), r["Peer_Account"].as_str()), (Some("bob"), Some("alice")));
    assert_eq!((r["UnreadMsgNum"].as_i64(), query(&report[0], "OptPlatform").as_str()), (Some(0), "Android"));
    assert!(r["LastReadTime"].as_i64().is_some(), "{r}");

    let add = json!({"From_Account": "alice", "AddFriendItem": [{"To_Account": "bob", "AddSource": "AddSource_Type_Web"}],
                     "ForceAddFlags": 1});
    assert_eq!(server.rest("sns/friend_add", add).await["ErrorCode"], 0);
    let f = calls(&backend, "Sns.CallbackFriendAdd", 1).await[0].json();
    assert_eq!(
        (f["ClientCmd"].as_str(), f["Admin_Account"].as_str(), f["ForceFlag"].as_i64()),
        (Some("friend_add"), Some("administrator"), Some(1)),
        "{f}"
    );
    assert_eq!(
        f["PairList"],
        json!([{"From_Account": "alice", "To_Account": "bob", "Initiator_Account": "alice"},
               {"From_Account": "bob", "To_Account": "alice", "Initiator_Account": "alice"}]),
        "both sides, as friend_add adds both ways"
    );
    // Blocking a friend ends the friendship: both are told, in one commit.
    let block = json!({"From_Account": "bob", "To_Account": ["alice"]});
    assert_eq!(server.rest("sns/black_list_add", block.clone()).await["ErrorCode"], 0);
    let b = calls(&backend, "Sns.CallbackBlackListAdd", 1).await[0].json();
    assert_eq!(b["PairList"], json!([{"From_Account": "bob", "To_Account": "alice"}]));
    let d = calls(&backend, "Sns.CallbackFriendDelete", 1).await[0].json();
    assert_eq!(d["PairList"].as_array().map(Vec::len), Some(2), "{d}");
    assert_eq!(server.rest("sns/black_list_delete", block).await["ErrorCode"], 0);
    let u = calls(&backend, "Sns.CallbackBlackListDelete", 1).await[0].json();
    assert_eq!(u["PairList"], json!([{"From_Account": "bob", "To_Account": "alice"}]));

    let portrait = json!({"From_Account": "alice", "ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": "Al"}]});
    assert_eq!(server.rest("profile/portrait_set", portrait).await["ErrorCode"], 0);
    let p = calls(&backend, "Profile.CallbackPortraitSet", 1).await[0].json();
    assert_eq!((p["Operator_Account"].as_str(), p["From_Account"].as_str()), (Some("administrator"), Some("alice")));
    assert_eq!(p["ProfileItem"], json!([{"Tag": "Tag_Profile_IM_Nick", "Value": "Al"}]));

    assert_eq!(bob.request(json!({"op": "logout"})).await["op"], "ok");
    drop(alice);
    let states = calls(&backend, "State.StateChange", 4).await;
    let infos: Vec<(String, String, String)> = states
        .iter()
        .map(|s| {
            let i = &s.json()["Info"];
            let field = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
            (field("To_Account"), field("Action"), field("Reason"))
        })
        .collect();
    let expect = |u: &str, a: &str, r: &str| (u.to_owned(), a.to_owned(), r.to_owned());
    assert!(infos.contains(&expect("bob", "Logout", "Unregister")), "{infos:?}");
    assert!(infos.contains(&expect("alice", "Disconnect", "LinkClose")), "{infos:?}");
    // Every body names its command.
    for r in backend.requests() {
        assert_eq!(r.json()["CallbackCommand"].as_str(), Some(query(&r, "CallbackCommand").as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_send_callbacks_outlive_a_down_backend_and_a_restart() {
    let up = Arc::new(AtomicBool::new(false));
    // The event ids the backend accepted, with the message each was about, in arrival order.
    let accepted: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let backend = {
        let (up, accepted) = (up.clone(), accepted.clone());
        Endpoint::start(move |r| {
            if !up.load(Ordering::SeqCst) {
                return Answer::json(503, json!({"down": true}));
            }
            let id = r.header(EVENT_ID_HEADER).unwrap_or_default().to_owned();
            accepted.lock().unwrap().push((id, r.json()["MsgRandom"].as_u64().unwrap_or_default()));
            ok()
        })
        .await
    };
    let server = server(&backend, Some(&["C2C.CallbackAfterSendMsg"])).await;
    for random in 1..=100u32 {
        let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": random, "MsgBody": text("m")});
        assert_eq!(server.rest("openim/sendmsg", body).await["ErrorCode"], 0);
    }
    calls(&backend, "C2C.CallbackAfterSendMsg", 1).await;
    let server = server.restart().await;
    up.store(true, Ordering::SeqCst);
    // Past every retry's wait (the test clock moves only when told).
    server.clock.advance_secs(600);
    for _ in 0..200 {
        if accepted.lock().unwrap().len() >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted = accepted.lock().unwrap().clone();
    let mut by_message: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (id, random) in &accepted {
        by_message.entry(*random).or_default().push(id.clone());
    }
    assert_eq!(
        by_message.keys().copied().collect::<Vec<_>>(),
        (1..=100).collect::<Vec<_>>(),
        "each message's event arrived"
    );
    for (random, ids) in &by_message {
        assert!(ids.iter().all(|id| id == &ids[0]), "message {random}: a duplicate carries the same event id: {ids:?}");
    }
    let order: Vec<u64> = accepted.iter().map(|(_, r)| *r).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "one user's events in the order they happened: {order:?}");
    // Every attempt of the first event, failed or not, carried its one id.
    let attempts: Vec<String> = backend
        .requests()
        .iter()
        .filter(|r| r.json()["MsgRandom"] == 1)
        .map(|r| r.header(EVENT_ID_HEADER).unwrap_or_default().to_owned())
        .collect();
    assert!(attempts.len() >= 2 && attempts.iter().all(|id| id == &attempts[0]), "{attempts:?}");
}

/// What the operator is shown: each command's counts (sent, failed, timed out, retried, given up) and the
/// outbox's depth and age, from the domain's callbacks over the real store and HTTP client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sees_each_commands_counts_and_the_outbox() {
    use duet_core::Core;
    use duet_core::callbacks::{Command, Source};
    use duet_core::clock::{Clock, ManualClock};
    use duet_core::messages::{CallbackSource, Draft, Encoded, Origin};
    use duet_core::model::{NewAccount, SenderCopy};
    use duet_test_support::{SDKAPPID, SECRET_KEY, T0_MS};

    // Before-send: too slow for its timeout. After-send: refused twice, then taken.
    let refusals = Arc::new(std::sync::atomic::AtomicUsize::new(2));
    let backend = {
        let refusals = refusals.clone();
        Endpoint::start(move |r| match query(r, "CallbackCommand").as_str() {
            "C2C.CallbackBeforeSendMsg" => ok().after(Duration::from_millis(500)),
            _ if refusals.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() => {
                Answer::json(500, json!({}))
            }
            _ => ok(),
        })
        .await
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = duet_server::Config::new(SDKAPPID, SECRET_KEY, dir.path());
    let store = duet_server::open_store(&config).await.expect("opening the store");
    let clock = Arc::new(ManualClock::new(T0_MS));
    let mut callbacks = CallbacksConfig::new(format!("{}/im", backend.url));
    callbacks.before_send_timeout_ms = 100;
    callbacks.give_up_after_secs = 3_600;
    let mut core_config = config.core.clone();
    core_config.notify = callbacks.notify_config("test");
    let client = Arc::new(duet_callback::Callbacks::new(callbacks, SDKAPPID).unwrap());
    let adapters = duet_core::Adapters {
        before_send: Some(client.clone()),
        after_events: Some(client.clone()),
        ..Default::default()
    };
    let core = Arc::new(Core::open(core_config, store.clone(), clock.clone(), adapters).await.unwrap());
    tokio::spawn(core.notifier().clone().run());
    let accounts = ["alice", "bob"].map(|id| NewAccount { id: id.into(), nick: None, face_url: None });
    core.accounts().import(accounts.into()).await.unwrap();
    let send = |random: u32| Draft {
        from: "alice".into(),
        to: vec!["bob".into()],
        seq: None,
        random,
        content: Encoded { body: text("hi").to_string(), ..Encoded::default() },
        lifetime_secs: 3_600,
        sender_copy: SenderCopy::History,
        no_unread: false,
        no_last_msg: false,
        need_read_receipt: false,
        callback: Some(CallbackSource::both(Source::rest("administrator"))),
    };
    core.messages().send(Origin::Admin("administrator"), send(1)).await.expect("delivered: the rule is deliver");
    let stats = core.notifier().stats().expect("callbacks are configured");
    let before = stats.of(Command::BeforeSendMsg).snapshot();
    assert_eq!(before, [0, 1, 1, 0, 0], "[sent, failed, timed out, retried, given up]");
    // The after-send event fails twice (each retry waits on the test clock), then goes through.
    let after = || stats.of(Command::AfterSendMsg).snapshot();
    for _ in 0..100 {
        if after()[0] == 1 {
            break;
        }
        clock.advance_secs(10);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(after(), [1, 2, 0, 2, 0]);
    // Counted when the call returns; gone from the outbox when its settling commits.
    for _ in 0..100 {
        if store.event_backlog().await.unwrap().0 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.event_backlog().await.unwrap(), (0, None));

    // The backend stays down past the give-up age: the event is dropped, and counted.
    refusals.store(usize::MAX, Ordering::SeqCst);
    core.messages().send(Origin::Admin("administrator"), send(2)).await.unwrap();
    for _ in 0..100 {
        if store.event_backlog().await.unwrap().0 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (queued, oldest) = store.event_backlog().await.unwrap();
    assert_eq!((queued, oldest), (1, Some(clock.now_secs())), "the outbox's depth and age");
    for _ in 0..200 {
        if after()[4] == 1 {
            break;
        }
        clock.advance_secs(300);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(after()[4], 1, "given up after give_up_after_secs: {:?}", after());
    // The count is taken when the worker gives up; the outbox forgets the event when its settling commits.
    for _ in 0..100 {
        if store.event_backlog().await.unwrap().0 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.event_backlog().await.unwrap(), (0, None));
}
