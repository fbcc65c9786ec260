//! Who is connected where, across the cluster: a JetStream key-value bucket per app
//! (`duet_<sdkappid>_presence`), one key per user (its UserID in hex), holding what each node has of the
//! user (its device sessions there, with the time the node last wrote them) and the user's `PushOnline`
//! state.
//!
//! A node rewrites a user's key when its sessions of the user change, and every [`HEARTBEAT`] for every
//! user it holds devices of. A node section older than [`DEAD_AFTER`] is a node that stopped (killed, or
//! cut off): readers ignore its devices, counting its mobile ones as `PushOnline` since it was last
//! heard of, and the next writer of the key drops the section. So a dead node's devices go offline (and
//! `PushOnline`) within [`DEAD_AFTER`], with no list of nodes anywhere.
//!
//! Writes compare-and-set on the key's revision (two nodes writing one user's key at once retry), and run
//! on a task of their own, the latest state per user winning, so a login never waits for NATS; reads wait
//! at most [`READ_TIMEOUT`], then see this node alone.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use async_trait::async_trait;
use duet_core::hub::{DeviceEntry, Directory, Elsewhere, NodeState};
use duet_core::model::Platform;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often a node rewrites the keys of the users it holds devices of.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A node section not rewritten for this long belongs to a node that stopped.
pub const DEAD_AFTER: Duration = Duration::from_secs(30);
/// How long a read of the directory may take before the node answers from what it holds alone.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a key lives unwritten: past `PushOnline`'s 7 days.
const KEY_MAX_AGE: Duration = Duration::from_secs(8 * 86_400);

/// A user's key.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    /// Node id (hex) to what it holds.
    #[serde(default)]
    nodes: BTreeMap<String, Section>,
    /// `PushOnline` since `at` (unix seconds) on `platform`.
    #[serde(default)]
    push_online: Option<PushOnline>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Section {
    /// When the node last wrote it, unix seconds.
    at: i64,
    devices: Vec<Device>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Device {
    d: String,
    p: String,
    #[serde(default)]
    bg: bool,
    since_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PushOnline {
    /// The platform's Tencent name.
    p: String,
    at: i64,
}

fn name(p: Platform) -> &'static str {
    p.name()
}

fn platform(name: &str) -> Option<Platform> {
    Platform::from_name(name)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn key(user: &str) -> String {
    user.bytes().map(|b| format!("{b:02x}")).collect()
}

impl Record {
    fn read(bytes: &[u8]) -> Record {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// What the nodes other than `node` hold, as of `now`.
    fn elsewhere(&self, node: &str, now: i64) -> Elsewhere {
        let mut out = Elsewhere {
            devices: Vec::new(),
            push_online: self.push_online.as_ref().and_then(|p| Some((platform(&p.p)?, p.at))),
        };
        for section in self.nodes.iter().filter(|(id, _)| *id != node).map(|(_, s)| s) {
            if now - section.at < DEAD_AFTER.as_secs() as i64 {
                out.devices.extend(section.devices.iter().filter_map(|d| {
                    Some(DeviceEntry {
                        device: d.d.clone(),
                        platform: platform(&d.p)?,
                        background: d.bg,
                        since_ms: d.since_ms,
                    })
                }));
            } else if let Some(mobile) = section.devices.iter().filter_map(|d| platform(&d.p)).find(|p| p.is_mobile()) {
                // A node that stopped: its mobile devices dropped without logging out when it was last heard of.
                if out.push_online.is_none_or(|(_, at)| at < section.at) {
                    out.push_online = Some((mobile, section.at));
                }
            }
        }
        out
    }

    /// Puts `node`'s `state` in, and drops the sections of nodes that stopped (keeping what they mean for
    /// `PushOnline`).
    fn apply(&mut self, node: &str, state: &NodeState, now: i64) {
        let dead = self.nodes.iter().filter(|(id, s)| *id != node && now - s.at >= DEAD_AFTER.as_secs() as i64);
        let gone = self.drop_dead(dead.map(|(id, _)| id.clone()).collect());
        if let Some(po) = gone
            && self.push_online.as_ref().is_none_or(|p| p.at < po.at)
        {
            self.push_online = Some(po);
        }
        if state.devices.is_empty() {
            self.nodes.remove(node);
        } else {
            let devices = state
                .devices
                .iter()
                .map(|d| Device {
                    d: d.device.clone(),
                    p: name(d.platform).to_owned(),
                    bg: d.background,
                    since_ms: d.since_ms,
                })
                .collect();
            self.nodes.insert(node.to_owned(), Section { at: now, devices });
        }
        // A device connected here: not `PushOnline`. None connected here: this node's `PushOnline` (a mobile
        // device that dropped), or none (a logout, a kick).
        self.push_online = match (&state.push_online, state.devices.is_empty()) {
            (_, false) => None,
            (Some((p, at)), true) => Some(PushOnline { p: name(*p).to_owned(), at: *at }),
            (None, true) => None,
        };
    }

    /// Removes the sections of `dead` nodes; the latest `PushOnline` they leave.
    fn drop_dead(&mut self, dead: Vec<String>) -> Option<PushOnline> {
        let mut po: Option<PushOnline> = None;
        for id in dead {
            if let Some(section) = self.nodes.remove(&id)
                && let Some(mobile) = section.devices.iter().filter_map(|d| platform(&d.p)).find(|p| p.is_mobile())
                && po.as_ref().is_none_or(|p| p.at < section.at)
            {
                po = Some(PushOnline { p: name(mobile).to_owned(), at: section.at });
            }
        }
        po
    }
}

/// Creates the bucket's stream with JetStream's own API request, as a key-value bucket of one value per
/// key expiring after [`KEY_MAX_AGE`] (`async_nats`'s `create_key_value` cannot read NATS 2.9's answer).
/// Another node creating it at the same time is fine: the same configuration is accepted twice.
async fn create_bucket(client: &async_nats::Client, bucket: &str) -> Result<(), String> {
    let config = serde_json::json!({
        "name": format!("KV_{bucket}"),
        "subjects": [format!("$KV.{bucket}.>")],
        "max_msgs_per_subject": 1,
        "max_age": KEY_MAX_AGE.as_nanos() as u64,
        "discard": "new",
        "allow_rollup_hdrs": true,
        "deny_delete": true,
        "allow_direct": true,
        "storage": "file",
        "num_replicas": 1,
    });
    let answer = client
        .request(format!("$JS.API.STREAM.CREATE.KV_{bucket}"), config.to_string().into())
        .await
        .map_err(|e| format!("creating the key-value bucket {bucket}: {e}"))?;
    let answer: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap_or_default();
    match answer.get("error") {
        // 10058: a stream of that name exists already (another node made it).
        Some(e) if e["err_code"] != 10058 => Err(format!("creating the key-value bucket {bucket}: {e}")),
        _ => Ok(()),
    }
}

/// The directory on a JetStream key-value bucket.
pub(crate) struct KvDirectory {
    node: String,
    kv: kv::Store,
    writes: mpsc::UnboundedSender<(String, NodeState)>,
}

impl KvDirectory {
    pub(crate) async fn open(
        client: &async_nats::Client,
        sdkappid: u64,
        node: u64,
        stop: CancellationToken,
    ) -> Result<Arc<KvDirectory>, String> {
        let js = async_nats::jetstream::new(client.clone());
        let bucket = format!("duet_{sdkappid}_presence");
        let kv = match js.get_key_value(&bucket).await {
            Ok(kv) => kv,
            Err(_) => {
                create_bucket(client, &bucket).await?;
                js.get_key_value(&bucket).await.map_err(|e| format!("the key-value bucket {bucket}: {e}"))?
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let directory = Arc::new(KvDirectory { node: format!("{node:016x}"), kv, writes: tx });
        tokio::spawn(write(directory.clone(), rx, stop));
        Ok(directory)
    }

    /// Writes `state` into `user`'s key, retrying while another node writes it too.
    async fn store(&self, user: &str, state: &NodeState) -> Result<(), String> {
        let key = key(user);
        for _ in 0..10 {
            let entry = self.kv.entry(&key).await.map_err(|e| e.to_string())?;
            let (mut record, revision) = match &entry {
                Some(e) if e.operation == kv::Operation::Put => (Record::read(&e.value), Some(e.revision)),
                Some(e) => (Record::default(), Some(e.revision)),
                None => (Record::default(), None),
            };
            record.apply(&self.node, state, now_secs());
            let value = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
            let written = match revision {
                Some(revision) => {
                    self.kv.update(&key, value.into(), revision).await.map(|_| ()).map_err(|e| e.to_string())
                }
                None => self.kv.create(&key, value.into()).await.map(|_| ()).map_err(|e| e.to_string()),
            };
            if written.is_ok() {
                return Ok(());
            }
        }
        Err(format!("{user}'s presence kept changing under this node's writes"))
    }
}

#[async_trait]
impl Directory for KvDirectory {
    fn record(&self, user: &str, state: NodeState) {
        let _ = self.writes.send((user.to_owned(), state));
    }

    async fn elsewhere(&self, user: &str) -> Elsewhere {
        match tokio::time::timeout(READ_TIMEOUT, self.kv.get(key(user))).await {
            Ok(Ok(Some(bytes))) => Record::read(&bytes).elsewhere(&self.node, now_secs()),
            Ok(Ok(None)) => Elsewhere::default(),
            Ok(Err(error)) => {
                tracing::warn!(%error, user, "bus: reading the presence directory failed; this node's view only");
                Elsewhere::default()
            }
            Err(_) => {
                tracing::warn!(user, "bus: the presence directory did not answer; this node's view only");
                Elsewhere::default()
            }
        }
    }
}

/// Writes the directory's changes, the latest per user, and rewrites every held user's key each heartbeat.
async fn write(
    directory: Arc<KvDirectory>,
    mut rx: mpsc::UnboundedReceiver<(String, NodeState)>,
    stop: CancellationToken,
) {
    // Users this node holds devices of, with their state, for the heartbeat.
    let held: Mutex<HashMap<String, NodeState>> = Mutex::default();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::new();
    loop {
        let due: Vec<(String, NodeState)> = tokio::select! {
            n = rx.recv_many(&mut batch, 1024) => {
                if n == 0 { return }
                let mut latest: HashMap<String, NodeState> = HashMap::new();
                for (user, state) in batch.drain(..) {
                    latest.insert(user, state);
                }
                let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
                for (user, state) in &latest {
                    if state.devices.is_empty() { held.remove(user); } else { held.insert(user.clone(), state.clone()); }
                }
                latest.into_iter().collect()
            }
            _ = heartbeat.tick() => held.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(u, s)| (u.clone(), s.clone())).collect(),
            () = stop.cancelled() => return,
        };
        for (user, state) in due {
            if let Err(error) = directory.store(&user, &state).await {
                tracing::warn!(%error, user, "bus: writing the presence directory failed; the next heartbeat retries");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(d: &str, p: Platform, since_ms: i64) -> DeviceEntry {
        DeviceEntry { device: d.into(), platform: p, background: false, since_ms }
    }

    #[test]
    fn a_user_is_seen_on_other_live_nodes_and_a_dead_nodes_phone_is_push_online() {
        let mut r = Record::default();
        r.apply("a", &NodeState { devices: vec![device("phone", Platform::Android, 1)], push_online: None }, 1000);
        r.apply("b", &NodeState { devices: vec![device("pc", Platform::Pc, 2)], push_online: None }, 1010);
        let from_b = r.elsewhere("b", 1015);
        assert_eq!(from_b.devices, [device("phone", Platform::Android, 1)]);
        assert_eq!(from_b.push_online, None);
        // Node a stops writing: 30 s after its last write its phone is PushOnline since then.
        let later = r.elsewhere("b", 1000 + DEAD_AFTER.as_secs() as i64);
        assert!(later.devices.is_empty());
        assert_eq!(later.push_online, Some((Platform::Android, 1000)));
        // The next write drops node a's section and keeps what it meant.
        r.apply("b", &NodeState { devices: Vec::new(), push_online: None }, 1040);
        assert!(r.nodes.is_empty());
        // b's last device logged out: None clears PushOnline (a logout ends it, as on one node).
        assert_eq!(r.push_online.map(|p| p.at), None);
    }

    #[test]
    fn a_drop_without_logout_leaves_push_online_and_a_login_anywhere_ends_it() {
        let mut r = Record::default();
        r.apply("a", &NodeState { devices: Vec::new(), push_online: Some((Platform::IPhone, 500)) }, 500);
        assert_eq!(r.elsewhere("b", 510).push_online, Some((Platform::IPhone, 500)));
        r.apply("b", &NodeState { devices: vec![device("pc", Platform::Pc, 3)], push_online: None }, 520);
        assert_eq!(r.elsewhere("a", 521).push_online, None);
        assert_eq!(r.elsewhere("a", 521).devices.len(), 1);
    }

    #[test]
    fn records_go_through_json() {
        let mut r = Record::default();
        r.apply("a", &NodeState { devices: vec![device("w", Platform::Web, 9)], push_online: None }, 7);
        let back = Record::read(&serde_json::to_vec(&r).unwrap());
        assert_eq!(back.elsewhere("z", 8).devices, [device("w", Platform::Web, 9)]);
        assert_eq!(key("bob"), "626f62");
    }

    /// Two nodes' directories on the test NATS (`DUET_TEST_NATS_URL`; skipped without): what one records,
    /// the other reads.
    #[tokio::test]
    async fn two_nodes_see_each_others_devices_through_jetstream() {
        let Some(url) = std::env::var("DUET_TEST_NATS_URL").ok().filter(|u| !u.is_empty()) else {
            eprintln!("skipped: DUET_TEST_NATS_URL is not set");
            return;
        };
        let client = async_nats::connect(&url).await.unwrap();
        let stop = CancellationToken::new();
        let app = 1_400_000_000 + u64::from(std::process::id());
        let a = KvDirectory::open(&client, app, 1, stop.clone()).await.unwrap();
        let b = KvDirectory::open(&client, app, 2, stop.clone()).await.unwrap();
        a.record("bob", NodeState { devices: vec![device("phone", Platform::IPhone, 5)], push_online: None });
        let seen = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let e = b.elsewhere("bob").await;
                if !e.devices.is_empty() {
                    return e;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("node b sees bob's phone on node a");
        assert_eq!(seen.devices, [device("phone", Platform::IPhone, 5)]);
        assert!(a.elsewhere("bob").await.devices.is_empty(), "a node does not count its own devices twice");
        // The phone drops without logging out: PushOnline, seen from b.
        a.record("bob", NodeState { devices: Vec::new(), push_online: Some((Platform::IPhone, 77)) });
        tokio::time::timeout(Duration::from_secs(10), async {
            while b.elsewhere("bob").await.push_online != Some((Platform::IPhone, 77)) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("node b sees bob PushOnline");
        stop.cancel();
        let js = async_nats::jetstream::new(client);
        let _ = js.delete_key_value(format!("duet_{app}_presence")).await;
    }
}
