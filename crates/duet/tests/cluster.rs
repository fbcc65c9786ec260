//! Several `duet serve` processes on one PostgreSQL and one NATS (issue 20): what one node commits reaches
//! devices connected to the others. Needs `DUET_TEST_POSTGRES_URL` and `DUET_TEST_NATS_URL` (`.ci/run` sets
//! both); skipped without them.

mod common;

use std::process::Child;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use duet_client::{Client, ClientConfig, Error, Event, Events, Platform};
use duet_store_postgres::testing::TestDb;
use serde_json::{Value, json};

const KEY: &str = "cluster-test-secret-key";
const WAIT: Duration = Duration::from_secs(15);

/// A cluster of nodes on one fresh schema and the test NATS, with an app of its own (its SDKAppID names
/// the bus subject, so concurrent tests do not hear each other).
struct Cluster {
    sdkappid: u64,
    nodes: Vec<Node>,
    _db: TestDb,
    _dirs: Vec<tempfile::TempDir>,
}

struct Node {
    child: Child,
    addr: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cluster {
    /// `None` when the environment names no PostgreSQL or NATS.
    async fn start(n: usize, sdkappid: u64, args: &[&str]) -> Option<Cluster> {
        let nats = std::env::var("DUET_TEST_NATS_URL").ok().filter(|u| !u.is_empty())?;
        let db = TestDb::create().await?;
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let mut all = vec!["--store", db.url().leak(), "--bus", nats.clone().leak(), "--no-demo"];
            all.extend_from_slice(args);
            let (child, addr) = common::start_with(dir.path(), sdkappid, KEY, &all);
            nodes.push(Node { child, addr });
            dirs.push(dir);
        }
        Some(Cluster { sdkappid, nodes, _db: db, _dirs: dirs })
    }

    fn sig(&self, user: &str) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        duet_core::usersig::generate(KEY, self.sdkappid, user, now, 3600, None)
    }

    /// The admin's REST call `path` on node `node`.
    async fn rest(&self, node: usize, path: &str, body: Value) -> Value {
        let url = format!(
            "http://{}/v4/{path}?sdkappid={}&identifier=administrator&usersig={}&random=1&contenttype=json",
            self.nodes[node].addr,
            self.sdkappid,
            self.sig("administrator")
        );
        let r = reqwest::Client::new().post(url).body(body.to_string()).send().await.unwrap();
        r.json().await.unwrap()
    }

    fn device(&self, node: usize, user: &str, platform: Platform, device: &str) -> ClientConfig {
        let mut c = ClientConfig::new(format!("http://{}", self.nodes[node].addr), user, self.sig(user))
            .platform(platform)
            .device(device);
        c.request_timeout = Duration::from_secs(5);
        c.reconnect_min = Duration::from_millis(20);
        c.reconnect_max = Duration::from_millis(200);
        c
    }
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}

/// The next event `pick` accepts, skipping the others.
async fn next_matching<T>(events: &mut Events, what: &str, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    within(what, async {
        loop {
            if let Some(t) = pick(events.recv().await.expect("the event stream ended")) {
                return t;
            }
        }
    })
    .await
}

async fn synced(config: ClientConfig) -> (Client, Events, Vec<Event>) {
    let (client, mut events) = Client::connect(config).await.expect("connecting");
    let mut seen = Vec::new();
    next_matching(&mut events, "the first sync", |e| {
        let done = e == Event::SyncComplete;
        seen.push(e);
        done.then_some(())
    })
    .await;
    (client, events, seen)
}

async fn next_text(events: &mut Events, what: &str) -> String {
    next_matching(events, what, |e| match e {
        Event::NewMessage(m) => Some(m.text()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mission_flow_runs_across_three_nodes() {
    let Some(cluster) = Cluster::start(3, 1_400_020_001, &["--blacklist-check", "report"]).await else {
        eprintln!("skipped: DUET_TEST_POSTGRES_URL and DUET_TEST_NATS_URL are not both set");
        return;
    };
    for user in ["alice", "bob", "carol"] {
        let r = cluster.rest(0, "im_open_login_svc/account_import", json!({"UserID": user})).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }

    // Offline at login: alice (node 1) writes to bob while bob is away.
    let (alice, mut alice_events, _) = synced(cluster.device(0, "alice", Platform::Pc, "alice-pc")).await;
    alice.send_text("bob", "while you were away").await.unwrap();

    // bob logs in on two devices, on nodes 2 and 3: each gets the offline message at login.
    let (bob_phone, mut phone_events, phone_sync) =
        synced(cluster.device(1, "bob", Platform::Android, "bob-phone")).await;
    let (bob_pc, mut pc_events, pc_sync) = synced(cluster.device(2, "bob", Platform::Pc, "bob-pc")).await;
    for sync in [&phone_sync, &pc_sync] {
        let texts: Vec<String> = sync
            .iter()
            .filter_map(|e| match e {
                Event::NewMessage(m) => Some(m.text()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["while you were away"]);
    }
    let contacts = bob_pc.conversations().await.unwrap();
    assert_eq!(contacts[0].peer, "alice", "alice is at the top of bob's recent contacts");

    // Online: alice on node 1 sends; both of bob's devices (nodes 2 and 3) get it live.
    alice.send_text("bob", "live across nodes").await.unwrap();
    assert_eq!(next_text(&mut phone_events, "bob's phone, live").await, "live across nodes");
    assert_eq!(next_text(&mut pc_events, "bob's pc, live").await, "live across nodes");

    // Multi-device sync: bob's phone (node 2) answers; alice (node 1) and bob's pc (node 3) see it.
    bob_phone.send_text("alice", "answer from the phone").await.unwrap();
    assert_eq!(next_text(&mut alice_events, "alice, the answer").await, "answer from the phone");
    assert_eq!(next_text(&mut pc_events, "bob's pc, its own phone's message").await, "answer from the phone");

    // History, from any node.
    let history = bob_pc.get_messages("alice", 10, None).await.unwrap();
    let texts: Vec<String> = history.iter().map(|m| m.text()).collect();
    assert_eq!(texts, ["answer from the phone", "live across nodes", "while you were away"]);

    // Typing, across nodes.
    alice.send_typing("bob", true).await.unwrap();
    next_matching(&mut phone_events, "bob's phone, alice typing", |e| {
        matches!(e, Event::Typing { ref from, typing: true } if from == "alice").then_some(())
    })
    .await;

    // The blacklist, written through node 3, holds on node 1 at once.
    let r = cluster.rest(2, "sns/black_list_add", json!({"From_Account": "bob", "To_Account": ["alice"]})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let refused = within("alice's refused send", async {
        loop {
            match alice.send_text("bob", "blocked?").await {
                Err(Error::Server { code, .. }) => return code,
                // The notice may still be on its way: a send that passed went before it.
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(other) => panic!("{other:?}"),
            }
        }
    })
    .await;
    assert_eq!(refused, 20007);

    // A kick through node 1 logs bob out on nodes 2 and 3.
    let r = cluster.rest(0, "im_open_login_svc/kick", json!({"UserID": "bob"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    for events in [&mut phone_events, &mut pc_events] {
        next_matching(events, "bob kicked", |e| matches!(e, Event::Kicked { .. }).then_some(())).await;
    }
    // And bob's old UserSig is refused by every node.
    for node in 0..3 {
        let config = cluster.device(node, "bob", Platform::Pc, "bob-pc");
        let mut c = config.clone();
        c.usersig = bob_sig_issued_before_kick(&cluster);
        assert!(Client::connect(c).await.is_err(), "node {node} took a revoked UserSig");
    }
    drop((bob_phone, bob_pc));
}

/// A UserSig dated a minute ago: issued before the kick.
fn bob_sig_issued_before_kick(cluster: &Cluster) -> String {
    let then = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 - 60;
    duet_core::usersig::generate(KEY, cluster.sdkappid, "bob", then, 3600, None)
}
