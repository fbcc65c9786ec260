//! The domain's send pipeline (`duet_core::messages::send`), driven directly over the real SQLite store: each
//! stage runs once and in order, a refused send stops before the store, and what a commit appended
//! reaches the subscribers of committed entries (`duet_core::messages::fanout`) in commit order.

use std::sync::{Arc, Mutex};

use duet_core::clock::ManualClock;
use duet_core::media::MediaItem;
use duet_core::messages::Subscriber;
use duet_core::messages::{Content, Draft, Encoded, Origin, SendError};
use duet_core::model::{Delivery, LogEvent, NewAccount, SenderCopy};
use duet_core::{Core, Error};
use duet_test_support::{SDKAPPID, SECRET_KEY, T0_MS};

async fn core() -> (Core, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = duet_server::Config::new(SDKAPPID, SECRET_KEY, dir.path());
    let store = duet_server::open_store(&config).await.expect("opening the store");
    let core =
        Core::open(config.core.clone(), store, Arc::new(ManualClock::new(T0_MS)), duet_core::Adapters::default())
            .await
            .expect("opening");
    let accounts = ["alice", "bob", "carol"].map(|id| NewAccount { id: id.into(), nick: None, face_url: None });
    core.accounts().import(accounts.into()).await.expect("importing");
    (core, dir)
}

/// Content that records which stages called it.
struct Recorded {
    text: String,
    calls: Arc<Mutex<Vec<&'static str>>>,
    refuse: bool,
}

impl Content for Recorded {
    type Error = &'static str;

    fn validate(&mut self) -> Result<(), &'static str> {
        self.calls.lock().unwrap().push("validate");
        if self.refuse { Err("too long") } else { Ok(()) }
    }

    fn uploads(&self) -> Vec<String> {
        self.calls.lock().unwrap().push("uploads");
        Vec::new()
    }

    fn describe(&mut self, _: Vec<Option<MediaItem>>) -> Result<(), &'static str> {
        self.calls.lock().unwrap().push("describe");
        Ok(())
    }

    fn shown(&self) -> (String, String) {
        self.calls.lock().unwrap().push("shown");
        (String::new(), String::new())
    }

    fn rewrite(&mut self, _: Option<serde_json::Value>, _: Option<String>) -> Result<(), &'static str> {
        self.calls.lock().unwrap().push("rewrite");
        Ok(())
    }

    fn encode(self) -> Encoded {
        self.calls.lock().unwrap().push("encode");
        Encoded {
            body: format!(r#"[{{"MsgType":"TIMTextElem","MsgContent":{{"Text":"{}"}}}}]"#, self.text),
            ..Default::default()
        }
    }
}

fn draft<C>(from: &str, to: &str, random: u32, content: C, lifetime_secs: u32) -> Draft<C> {
    Draft {
        from: from.into(),
        to: vec![to.into()],
        seq: None,
        random,
        content,
        lifetime_secs,
        sender_copy: SenderCopy::Sync,
        no_unread: false,
        no_last_msg: false,
        need_read_receipt: false,
        callback: None,
    }
}

/// A subscriber that keeps (user, log seq, text) of every committed message entry.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, u64, String)>>);

impl Subscriber for Seen {
    fn committed(&self, deliveries: &[Delivery]) {
        for d in deliveries {
            if let LogEvent::Message(m) = &d.entry.event {
                let text = m.body.split("\"Text\":\"").nth(1).unwrap_or_default().split('"').next().unwrap_or_default();
                self.0.lock().unwrap().push((d.user.clone(), d.entry.seq, text.to_owned()));
            }
        }
    }
}

#[tokio::test]
async fn each_stage_runs_once_in_order_and_subscribers_see_commits_in_order() {
    let (core, _dir) = core().await;
    let seen = Arc::new(Seen::default());
    core.subscribe(seen.clone());
    let calls = Arc::new(Mutex::new(Vec::new()));
    for (i, text) in ["one", "two", "three"].into_iter().enumerate() {
        let content = Recorded { text: text.into(), calls: calls.clone(), refuse: false };
        let sent =
            core.messages().send(Origin::Client, draft("alice", "bob", i as u32, content, 600)).await.expect("sent");
        assert!(sent.failed.is_empty() && sent.conv_seq == i as u64 + 1, "{sent:?}");
    }
    // Validate, then the uploads it names for the grants (none: no describe), then the stored form.
    assert_eq!(calls.lock().unwrap().chunks(3).collect::<Vec<_>>(), vec![["validate", "uploads", "encode"]; 3]);
    // Each commit reached the subscriber: bob's entry and alice's own copy, in commit order.
    let seen = seen.0.lock().unwrap().clone();
    let bob: Vec<_> = seen.iter().filter(|(u, ..)| u == "bob").map(|(_, seq, t)| (*seq, t.as_str())).collect();
    let alice: Vec<_> = seen.iter().filter(|(u, ..)| u == "alice").map(|(_, _, t)| t.as_str()).collect();
    assert_eq!(bob, [(1, "one"), (2, "two"), (3, "three")]);
    assert_eq!(alice, ["one", "two", "three"]);
}

#[tokio::test]
async fn online_only_messages_reach_subscribers_unlogged_and_refused_ones_reach_nothing() {
    let (core, _dir) = core().await;
    let seen = Arc::new(Seen::default());
    core.subscribe(seen.clone());
    let calls = Arc::new(Mutex::new(Vec::new()));
    // Online only: delivered with seq 0, stored nowhere.
    let live = Recorded { text: "typing".into(), calls: calls.clone(), refuse: false };
    let sent = core.messages().send(Origin::Client, draft("alice", "bob", 1, live, 0)).await.expect("sent");
    assert_eq!((sent.conv_seq, sent.sender_log_seq), (0, 0));
    assert_eq!(
        *seen.0.lock().unwrap(),
        [("bob".to_owned(), 0, "typing".to_owned()), ("alice".to_owned(), 0, "typing".to_owned())]
    );
    seen.0.lock().unwrap().clear();

    // Refused by its content: no later stage runs.
    calls.lock().unwrap().clear();
    let long = Recorded { text: "x".into(), calls: calls.clone(), refuse: true };
    let refused = core.messages().send(Origin::Client, draft("alice", "bob", 2, long, 600)).await;
    assert!(matches!(refused, Err(SendError::Content("too long"))), "{refused:?}");
    assert_eq!(*calls.lock().unwrap(), ["validate"]);

    // Silently dropped by bob's blacklist: answered as sent, stored and delivered nowhere.
    core.relations().add_to_blacklist("bob", vec!["carol".into()], &admin()).await.expect("blacklisting");
    let dropped = Encoded { body: "[]".into(), ..Default::default() };
    let sent = core.messages().send(Origin::Client, draft("carol", "bob", 3, dropped, 600)).await.expect("looks sent");
    assert_eq!((sent.conv_seq, sent.sender_log_seq), (0, 0));
    // The admin's sends pass the policy.
    let admin =
        Encoded { body: r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]"#.into(), ..Default::default() };
    let sent =
        core.messages().send(Origin::Admin("administrator"), draft("carol", "bob", 4, admin, 600)).await.expect("sent");
    assert_eq!(sent.conv_seq, 1);
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|(u, ..)| u == "bob").count(), 1, "{seen:?}");
    // Unknown recipients are the store's to report.
    let ghost = Encoded { body: "[]".into(), ..Default::default() };
    let sent = core.messages().send(Origin::Client, draft("alice", "ghost", 5, ghost, 600)).await.expect("answered");
    assert_eq!(sent.failed, ["ghost"]);
    let unknown = core.messages().send(Origin::Client, draft("nobody", "bob", 6, Encoded::default(), 600)).await;
    assert!(matches!(unknown, Err(SendError::Domain(Error::NoSuchSender(_)))), "{unknown:?}");
}

/// The admin API, as the source of the relation writes these tests make.
fn admin() -> duet_core::callbacks::Source {
    duet_core::callbacks::Source::rest("administrator")
}
