//! The push service (`duet_core::push`) driven directly over the real SQLite store, with a provider that
//! records what it is given (a stand-in for a maker's service; the real clients are tested against local
//! endpoints in `duet-push`): which devices get a push, what it says, and what each provider answer does
//! to the outbox and the token.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use duet_core::Core;
use duet_core::clock::ManualClock;
use duet_core::hub::SessionKind;
use duet_core::messages::{Draft, Encoded, Origin};
use duet_core::model::{NewAccount, Platform, ProfileValue, SenderCopy, TAG_NICK};
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, RegisterError, Registration, Target};
use duet_core::store::Store;
use duet_test_support::{SDKAPPID, SECRET_KEY, T0_MS};

/// Records every push and answers from a script (then `Sent`).
struct Recorder {
    kind: ProviderKind,
    got: Mutex<Vec<(Target, Notification)>>,
    script: Mutex<Vec<Outcome>>,
}

#[async_trait]
impl Provider for Recorder {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    async fn send(&self, target: &Target, notification: &Notification) -> Outcome {
        self.got.lock().unwrap().push((target.clone(), notification.clone()));
        let mut script = self.script.lock().unwrap();
        if script.is_empty() { Outcome::Sent } else { script.remove(0) }
    }
}

struct World {
    core: Arc<Core>,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
    apns: Arc<Recorder>,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new(script: Vec<Outcome>) -> World {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = duet_server::Config::new(SDKAPPID, SECRET_KEY, dir.path());
        let store = duet_server::open_store(&config).await.expect("opening the store");
        let clock = Arc::new(ManualClock::new(T0_MS));
        let apns = Arc::new(Recorder { kind: ProviderKind::Apns, got: Mutex::default(), script: Mutex::new(script) });
        let core = Core::open(
            config.core.clone(),
            store.clone(),
            clock.clone(),
            duet_core::Adapters { push: vec![apns.clone()], ..Default::default() },
        )
        .await
        .unwrap();
        let accounts = ["alice", "bob"].map(|id| NewAccount { id: id.into(), nick: None, face_url: None });
        core.accounts().import(accounts.into()).await.unwrap();
        core.accounts()
            .set_profile(
                "alice",
                vec![(TAG_NICK.into(), ProfileValue::Text("Alice".into()))],
                &duet_core::callbacks::Source::rest("administrator"),
            )
            .await
            .unwrap();
        let core = Arc::new(core);
        tokio::spawn(core.push().clone().run());
        World { core, clock, store, apns, _dir: dir }
    }

    fn session(&self, user: &str, device: &str) -> duet_core::hub::Session {
        self.core.hub().register(self.core.config().login_policy, user, Platform::IPhone, device, SessionKind::Device)
    }

    async fn send(&self, text: &str) {
        let body = format!(r#"[{{"MsgType":"TIMTextElem","MsgContent":{{"Text":"{text}"}}}}]"#);
        let draft = Draft {
            from: "alice".into(),
            to: vec!["bob".into()],
            seq: None,
            random: rand::random(),
            content: Encoded { body, cloud_custom_data: String::new(), push_info: None },
            lifetime_secs: 604_800,
            sender_copy: SenderCopy::Sync,
            no_unread: false,
            no_last_msg: false,
            need_read_receipt: false,
            callback: None,
        };
        self.core.messages().send(Origin::Client, draft).await.unwrap();
    }

    /// Waits until the provider got `n` pushes (the worker runs on its own task).
    async fn pushes(&self, n: usize) -> Vec<(Target, Notification)> {
        for _ in 0..500 {
            if self.apns.got.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.apns.got.lock().unwrap().clone()
    }

    async fn backlog(&self) -> u64 {
        self.store.push_backlog().await.unwrap().0
    }

    /// Waits until the outbox holds `n` pushes.
    async fn backlog_is(&self, n: u64) {
        for _ in 0..500 {
            if self.backlog().await == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the outbox holds {} pushes, not {n}", self.backlog().await);
    }
}

fn registration(token: &str) -> Registration {
    Registration { provider: ProviderKind::Apns, token: token.into(), app_id: None, lang: None }
}

#[tokio::test]
async fn an_away_device_gets_one_push_with_title_body_and_badge() {
    let w = World::new(Vec::new()).await;
    let phone = w.session("bob", "phone");
    w.core.push().register(&phone, registration("tok")).await.unwrap();
    w.core.sessions().disconnect(&phone, duet_core::sessions::Gone::Closed).await;
    w.send("hello").await;
    w.send("again").await;
    let got = w.pushes(2).await;
    assert_eq!(got.len(), 2);
    let (target, n) = &got[0];
    assert_eq!(target.token, "tok");
    assert_eq!((n.title.as_str(), n.body.as_str()), ("Alice", "hello"));
    assert_eq!((n.from.as_str(), n.to.as_str()), ("alice", "bob"));
    assert!(n.badge.is_some_and(|b| b >= 1), "the badge is bob's unread count: {:?}", n.badge);
    assert_eq!(got[1].1.badge, Some(2));
    w.backlog_is(0).await;
    assert_eq!(w.core.push().stats(ProviderKind::Apns).unwrap().sent.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_connected_device_is_pushed_only_in_the_background() {
    let w = World::new(Vec::new()).await;
    let phone = w.session("bob", "phone");
    w.core.push().register(&phone, registration("tok")).await.unwrap();
    w.send("in the foreground").await;
    w.backlog_is(0).await;
    assert!(w.pushes(0).await.is_empty(), "a foreground device gets it over its connection only");
    w.core.hub().set_background(&phone, true);
    w.send("in the background").await;
    assert_eq!(w.pushes(1).await[0].1.body, "in the background");
    w.core.hub().set_background(&phone, false);
    w.send("back").await;
    w.backlog_is(0).await;
    assert_eq!(w.pushes(1).await.len(), 1);
}

#[tokio::test]
async fn logout_kick_and_staleness_end_pushes() {
    let w = World::new(Vec::new()).await;
    let phone = w.session("bob", "phone");
    w.core.push().register(&phone, registration("tok")).await.unwrap();
    w.core.sessions().logout(&phone).await;
    w.send("after logout").await;
    assert_eq!(w.backlog().await, 0, "nothing queued for a logged-out device");
    // Registered again, away, then kicked by the admin.
    let phone = w.session("bob", "phone");
    w.core.push().register(&phone, registration("tok")).await.unwrap();
    w.core.sessions().disconnect(&phone, duet_core::sessions::Gone::Closed).await;
    w.core.accounts().kick("bob").await.unwrap();
    w.send("after kick").await;
    assert_eq!(w.backlog().await, 0);
    // Registered again, away for more than 7 days.
    let phone = w.session("bob", "phone");
    w.core.push().register(&phone, registration("tok")).await.unwrap();
    w.core.sessions().disconnect(&phone, duet_core::sessions::Gone::Closed).await;
    w.clock.advance_secs(7 * 86_400 + 1);
    w.send("stale").await;
    w.backlog_is(0).await;
    assert!(w.pushes(0).await.is_empty());
    assert_eq!(w.core.push().stats(ProviderKind::Apns).unwrap().skipped.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_transient_failure_is_tried_again_and_an_invalid_token_is_forgotten() {
    let retry = Outcome::Retry { after: None, reason: "503".into() };
    let w = World::new(vec![retry, Outcome::InvalidToken { reason: "Unregistered".into() }]).await;
    let phone = w.session("bob", "phone");
    w.core.push().register(&phone, registration("tok")).await.unwrap();
    w.core.sessions().disconnect(&phone, duet_core::sessions::Gone::Closed).await;
    w.send("one").await;
    assert_eq!(w.pushes(1).await.len(), 1);
    w.backlog_is(1).await;
    // Due again 2 s later (the first backoff).
    w.clock.advance_secs(2);
    assert_eq!(w.pushes(2).await.len(), 2);
    w.backlog_is(0).await;
    assert_eq!(w.store.push_devices().await.unwrap(), [], "the invalid token is forgotten");
    let stats = w.core.push().stats(ProviderKind::Apns).unwrap();
    assert_eq!(stats.retried.load(Ordering::Relaxed), 1);
    assert_eq!(stats.tokens_removed.load(Ordering::Relaxed), 1);
    w.send("two").await;
    assert_eq!(w.backlog().await, 0, "no device left to push to");
}

#[tokio::test]
async fn a_provider_not_configured_and_a_transient_session_are_refused() {
    let w = World::new(Vec::new()).await;
    let phone = w.session("bob", "phone");
    let fcm = Registration { provider: ProviderKind::Fcm, ..registration("t") };
    assert!(matches!(w.core.push().register(&phone, fcm).await, Err(RegisterError::NotConfigured(ProviderKind::Fcm))));
    let tool = w.core.hub().register(
        w.core.config().login_policy,
        "bob",
        Platform::Linux,
        "tool",
        SessionKind::Transient { live: false },
    );
    assert!(matches!(w.core.push().register(&tool, registration("t")).await, Err(RegisterError::NotADevice)));
}
