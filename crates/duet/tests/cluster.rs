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
        Cluster::start_with(n, sdkappid, args, |db| db.url(), |nats| nats.to_owned()).await
    }

    /// [`Cluster::start`] with more environment variables for every node.
    async fn start_env(n: usize, sdkappid: u64, args: &[&str], envs: &[(String, String)]) -> Option<Cluster> {
        Cluster::start_full(n, sdkappid, args, |db| db.url(), |nats| nats.to_owned(), envs).await
    }

    /// [`Cluster::start`] with the store's and the bus's URLs made by `store` and `bus` (to put a proxy
    /// between the nodes and PostgreSQL or NATS).
    async fn start_with(
        n: usize,
        sdkappid: u64,
        args: &[&str],
        store: impl Fn(&TestDb) -> String,
        bus: impl Fn(&str) -> String,
    ) -> Option<Cluster> {
        Cluster::start_full(n, sdkappid, args, store, bus, &[]).await
    }

    async fn start_full(
        n: usize,
        sdkappid: u64,
        args: &[&str],
        store: impl Fn(&TestDb) -> String,
        bus: impl Fn(&str) -> String,
        envs: &[(String, String)],
    ) -> Option<Cluster> {
        let nats = std::env::var("DUET_TEST_NATS_URL").ok().filter(|u| !u.is_empty())?;
        let db = TestDb::create().await?;
        let (store, bus) = (store(&db), bus(&nats));
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let mut all = vec!["--store", store.as_str(), "--bus", bus.as_str(), "--no-demo"];
            all.extend_from_slice(args);
            let (child, addr) = common::start_env(dir.path(), sdkappid, KEY, &all, envs);
            nodes.push(Node { child, addr });
            dirs.push(dir);
        }
        Some(Cluster { sdkappid, nodes, _db: db, _dirs: dirs })
    }

    fn rest_url(&self, addr: &str, path: &str) -> String {
        format!(
            "http://{addr}/v4/{path}?sdkappid={}&identifier=administrator&usersig={}&random=1&contenttype=json",
            self.sdkappid,
            self.sig("administrator")
        )
    }

    fn sig(&self, user: &str) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        duet_core::usersig::generate(KEY, self.sdkappid, user, now, 3600, None)
    }

    /// The admin's REST call `path` on node `node`.
    async fn rest(&self, node: usize, path: &str, body: Value) -> Value {
        let url = self.rest_url(&self.nodes[node].addr, path);
        let r = reqwest::Client::new().post(url).body(body.to_string()).send().await.unwrap();
        r.json().await.unwrap()
    }

    fn device(&self, node: usize, user: &str, platform: Platform, device: &str) -> ClientConfig {
        self.device_at(&self.nodes[node].addr, user, platform, device)
    }

    fn device_at(&self, addr: &str, user: &str, platform: Platform, device: &str) -> ClientConfig {
        let mut c = ClientConfig::new(format!("http://{addr}"), user, self.sig(user)).platform(platform).device(device);
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

    // Online status, asked of node 1: bob is online on his Android (node 2) and his PC (node 3).
    within("bob online on both platforms", async {
        loop {
            let r =
                cluster.rest(0, "openim/query_online_status", json!({"To_Account": ["bob"], "IsNeedDetail": 1})).await;
            let mut platforms: Vec<String> = r["QueryResult"][0]["Detail"]
                .as_array()
                .map(|d| d.iter().map(|p| p["Platform"].as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            platforms.sort();
            if r["QueryResult"][0]["Status"] == "Online" && platforms == ["Android", "PC"] {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

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

    // The multi-device policy spans the nodes: a second PC of bob's, on node 1, logs out his PC on node 3
    // (one device per platform).
    let (bob_pc2, mut pc2_events, _) = synced(cluster.device(0, "bob", Platform::Pc, "bob-pc-2")).await;
    next_matching(&mut pc_events, "bob's first PC logged out", |e| match e {
        Event::Kicked { code, .. } => Some(code),
        _ => None,
    })
    .await;

    // A kick through node 1 logs bob out on nodes 1 and 2.
    let r = cluster.rest(0, "im_open_login_svc/kick", json!({"UserID": "bob"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    for events in [&mut phone_events, &mut pc2_events] {
        next_matching(events, "bob kicked", |e| matches!(e, Event::Kicked { .. }).then_some(())).await;
    }
    // And bob's old UserSig is refused by every node.
    for node in 0..3 {
        let config = cluster.device(node, "bob", Platform::Pc, "bob-pc");
        let mut c = config.clone();
        c.usersig = bob_sig_issued_before_kick(&cluster).into();
        assert!(Client::connect(c).await.is_err(), "node {node} took a revoked UserSig");
    }
    drop((bob_phone, bob_pc, bob_pc2));
}

/// A UserSig dated a minute ago: issued before the kick.
fn bob_sig_issued_before_kick(cluster: &Cluster) -> String {
    let then = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 - 60;
    duet_core::usersig::generate(KEY, cluster.sdkappid, "bob", then, 3600, None)
}

/// The admin's `sendmsg` of text `i` from alice to bob through `url`, retried with the same `MsgSeq` and
/// `MsgRandom` until acknowledged (a retry of a send that was committed is answered, not stored again).
async fn send_until_acked(http: &reqwest::Client, url: &str, i: u32) {
    let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgSeq": i, "MsgRandom": i,
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": format!("m{i}")}}]});
    within("an acknowledged send", async {
        loop {
            match http.post(url).body(body.to_string()).send().await {
                Ok(r) => match r.json::<Value>().await {
                    Ok(v) if v["ErrorCode"] == 0 => return,
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                },
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
}

/// bob's history with alice, read through node `node`: every text, oldest first.
async fn bob_history(cluster: &Cluster, node: usize) -> Vec<String> {
    let mut texts = Vec::new();
    let mut last_key = String::new();
    loop {
        let body = json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 100, "MinTime": 0,
            "MaxTime": 4_000_000_000u64, "LastMsgKey": last_key});
        let r = cluster.rest(node, "openim/admin_getroammsg", body).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
        // Pages go back in time, each in ascending order.
        let page: Vec<String> = r["MsgList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["MsgBody"][0]["MsgContent"]["Text"].as_str().unwrap().to_owned())
            .collect();
        texts.splice(0..0, page);
        if r["Complete"] == 1 {
            break;
        }
        last_key = r["LastMsgKey"].as_str().unwrap().to_owned();
    }
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_send_loses_and_duplicates_nothing_and_its_clients_resync_elsewhere() {
    let Some(mut cluster) = Cluster::start(2, 1_400_020_002, &[]).await else {
        eprintln!("skipped: DUET_TEST_POSTGRES_URL and DUET_TEST_NATS_URL are not both set");
        return;
    };
    for user in ["alice", "bob"] {
        let r = cluster.rest(0, "im_open_login_svc/account_import", json!({"UserID": user})).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    let backends: Vec<std::net::SocketAddr> = cluster.nodes.iter().map(|n| n.addr.parse().unwrap()).collect();
    let lb = common::proxy::Proxy::start(backends.clone()).await;
    // bob's device connects through the load balancer to node 1 (the first in its rotation).
    let (_bob, mut bob_events, _) = synced(cluster.device_at(&lb.addr().to_string(), "bob", Platform::Pc, "pc")).await;

    // Every request on a new connection, so the balancer spreads them over both nodes.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let url = cluster.rest_url(&lb.addr().to_string(), "openim/sendmsg");
    const N: u32 = 200;
    for i in 0..N {
        if i == N / 2 {
            // SIGKILL of node 1, with bob's connection and whatever sends it had in flight.
            let node = cluster.nodes.remove(0);
            lb.remove(backends[0]);
            drop(node);
        }
        send_until_acked(&http, &url, i).await;
    }
    let expected: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert_eq!(bob_history(&cluster, 0).await, expected, "every acknowledged send once, in order");

    // bob's device reconnected (to node 2) and has every message once.
    let mut seen = std::collections::BTreeSet::new();
    within("bob's device has every message", async {
        while seen.len() < N as usize {
            if let Some(Event::NewMessage(m)) = bob_events.recv().await {
                assert!(seen.insert(m.text()), "bob's device got {} twice", m.text());
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_for_seconds_delays_delivery_and_loses_nothing() {
    let nats: std::net::SocketAddr = match std::env::var("DUET_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => {
            url.trim_start_matches("nats://").parse().expect("DUET_TEST_NATS_URL: nats://host:port")
        }
        _ => {
            eprintln!("skipped: DUET_TEST_NATS_URL is not set");
            return;
        }
    };
    let link = common::proxy::Proxy::start(vec![nats]).await;
    let bus = format!("nats://{}", link.addr());
    let Some(cluster) = Cluster::start_with(2, 1_400_020_003, &[], |db| db.url(), |_| bus.clone()).await else {
        eprintln!("skipped: DUET_TEST_POSTGRES_URL is not set");
        return;
    };
    for user in ["alice", "bob"] {
        let r = cluster.rest(0, "im_open_login_svc/account_import", json!({"UserID": user})).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    let (alice, _alice_events, _) = synced(cluster.device(0, "alice", Platform::Pc, "pc")).await;
    let mut bob_config = cluster.device(1, "bob", Platform::Pc, "pc");
    bob_config.heartbeat = Duration::from_secs(1);
    let (_bob, mut bob_events, _) = synced(bob_config).await;
    alice.send_text("bob", "before").await.unwrap();
    assert_eq!(next_text(&mut bob_events, "before the outage").await, "before");

    link.cut();
    // Sends still commit: the store is up.
    alice.send_text("bob", "during").await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    link.restore();
    // Delayed, not lost: the notice, or else bob's next ping (its `latest` is past bob's cursor).
    assert_eq!(next_text(&mut bob_events, "the message sent during the outage").await, "during");
    alice.send_text("bob", "after").await.unwrap();
    assert_eq!(next_text(&mut bob_events, "after the outage").await, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_fails_sends_clearly_and_they_succeed_once_it_is_back() {
    let pg: std::net::SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let link = common::proxy::Proxy::start(vec![pg]).await;
    let through = link.addr().to_string();
    let Some(cluster) =
        Cluster::start_with(1, 1_400_020_004, &[], |db| db.url_through(&through), |nats| nats.to_owned()).await
    else {
        eprintln!("skipped: DUET_TEST_POSTGRES_URL and DUET_TEST_NATS_URL are not both set");
        return;
    };
    for user in ["alice", "bob"] {
        let r = cluster.rest(0, "im_open_login_svc/account_import", json!({"UserID": user})).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    let send = |random: u32| {
        cluster.rest(
            0,
            "openim/sendmsg",
            json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": random,
                "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": format!("r{random}")}}]}),
        )
    };
    assert_eq!(send(1).await["ErrorCode"], 0);

    link.cut();
    let started = std::time::Instant::now();
    let r = send(2).await;
    assert_ne!(r["ErrorCode"], 0, "a send while PostgreSQL is unreachable: {r}");
    assert_eq!(r["ActionStatus"], "FAIL");
    assert!(r["ErrorInfo"].as_str().unwrap().contains("retry"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(12), "the failure took {:?}", started.elapsed());

    link.restore();
    within("a send after PostgreSQL is back", async {
        loop {
            if send(3).await["ErrorCode"] == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(bob_history(&cluster, 0).await, ["r1", "r3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_uploaded_through_one_node_is_fetched_through_another() {
    if !duet_blob_s3::testing::enabled("an_image_uploaded_through_one_node_is_fetched_through_another") {
        return;
    }
    let moto = duet_blob_s3::testing::Moto::start().await;
    moto.bucket("duet-cluster", "media").await;
    let args = ["--media-store", "s3://duet-cluster/media"];
    let Some(cluster) = Cluster::start_env(3, 1_400_020_005, &args, &moto.vars()).await else {
        eprintln!("skipped: DUET_TEST_POSTGRES_URL and DUET_TEST_NATS_URL are not both set");
        return;
    };
    for user in ["alice", "bob"] {
        let r = cluster.rest(0, "im_open_login_svc/account_import", json!({"UserID": user})).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    let img = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    let http = reqwest::Client::new();
    let auth = |user: &str| format!("identifier={user}&usersig={}", cluster.sig(user));
    // alice uploads through node 1.
    let url = format!("http://{}/v1/media?type=image&filename=cat.png&{}", cluster.nodes[0].addr, auth("alice"));
    let r: Value = http.post(url).body(png.clone()).send().await.unwrap().json().await.unwrap();
    let uuid = r["UUID"].as_str().unwrap_or_else(|| panic!("an upload answer: {r}")).to_owned();
    // alice sends it to bob through node 2, which grants bob the file.
    let elem = json!({"MsgType": "TIMImageElem", "MsgContent": {"UUID": uuid, "ImageFormat": 2, "ImageInfoArray": r["ImageInfoArray"]}});
    let sent = cluster
        .rest(
            1,
            "openim/sendmsg",
            json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": [elem]}),
        )
        .await;
    assert_eq!(sent["ErrorCode"], 0, "{sent}");
    // bob downloads it through node 3: the original, byte for byte, and its thumbnail.
    let original = format!("http://{}/v1/media/{uuid}?{}", cluster.nodes[2].addr, auth("bob"));
    let got = http.get(original).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), png);
    let thumb = format!("http://{}/v1/media/{uuid}/thumb?{}", cluster.nodes[2].addr, auth("bob"));
    let got = http.get(thumb).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert!(!got.bytes().await.unwrap().is_empty());
    // carol, never granted, may not, on any node.
    let r = cluster.rest(0, "im_open_login_svc/account_import", json!({"UserID": "carol"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let denied = format!("http://{}/v1/media/{uuid}?{}", cluster.nodes[1].addr, auth("carol"));
    assert_eq!(http.get(denied).send().await.unwrap().status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friends_only_holds_across_nodes() {
    let Some(cluster) = Cluster::start(2, 1_400_020_006, &["--friends-only"]).await else {
        eprintln!("skipped: DUET_TEST_POSTGRES_URL and DUET_TEST_NATS_URL are not both set");
        return;
    };
    for user in ["alice", "bob"] {
        let r = cluster.rest(0, "im_open_login_svc/account_import", json!({"UserID": user})).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    let (alice, _alice_events, _) = synced(cluster.device(0, "alice", Platform::Pc, "pc")).await;
    let (_bob, mut bob_events, _) = synced(cluster.device(1, "bob", Platform::Pc, "pc")).await;
    // Not friends: refused (Tencent's 20010 or 20011, whichever side is missing).
    match alice.send_text("bob", "hello?").await {
        Err(Error::Server { code, .. }) => assert!([20009, 20010, 20011].contains(&code), "{code}"),
        other => panic!("a send between strangers: {other:?}"),
    }
    // Made friends both ways through node 2: alice's node 1 lets her write at once (its cache followed).
    let r = cluster
        .rest(
            1,
            "sns/friend_import",
            json!({"From_Account": "alice", "AddFriendItem": [{"To_Account": "bob", "AddSource": "AddSource_Type_Test"}]}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let r = cluster
        .rest(
            1,
            "sns/friend_import",
            json!({"From_Account": "bob", "AddFriendItem": [{"To_Account": "alice", "AddSource": "AddSource_Type_Test"}]}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    within("alice's send to her new friend", async {
        while alice.send_text("bob", "friends now").await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(next_text(&mut bob_events, "bob gets it on node 2").await, "friends now");
}
