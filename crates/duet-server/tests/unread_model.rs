//! Unread counts against a model of the rules: a few thousand random sends (some `NoUnread`), reads,
//! recalls, one-sided deletes, cleared conversations and receive options, driven through REST and the
//! client protocol; after each step every user's counts, per peer and in total, from REST and from the
//! client's conversation list, must be the model's.
//!
//! The rules: a message counts as unread for its recipient while it is not `NoUnread`, not recalled, not
//! deleted from the recipient's side, and later than the recipient's read time of the conversation. A
//! cleared-and-deleted conversation starts again from nothing (its read time too). The total leaves out
//! conversations whose receive option is not "receive".

use std::collections::HashMap;

use duet_core::clock::Clock;
use duet_test_support::{TestServer, WsClient, text};
use serde_json::{Value, json};

const USERS: [&str; 3] = ["ann", "ben", "cat"];
const STEPS: usize = 2000;

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Msg {
    from: usize,
    to: usize,
    key: String,
    time: i64,
    no_unread: bool,
    recalled: bool,
    /// Deleted from (hidden on) the sender's / the recipient's side.
    gone_for_sender: bool,
    gone_for_recipient: bool,
}

#[derive(Default)]
struct Model {
    msgs: Vec<Msg>,
    /// (owner, peer) -> read time.
    read: HashMap<(usize, usize), i64>,
    /// (owner, peer) -> receive option.
    receive: HashMap<(usize, usize), u8>,
}

impl Model {
    fn unread(&self, owner: usize, peer: usize) -> u64 {
        let read = self.read.get(&(owner, peer)).copied().unwrap_or(0);
        self.msgs
            .iter()
            .filter(|m| m.from == peer && m.to == owner)
            .filter(|m| !m.no_unread && !m.recalled && !m.gone_for_recipient && m.time > read)
            .count() as u64
    }

    fn total(&self, owner: usize) -> u64 {
        (0..USERS.len())
            .filter(|&p| p != owner && self.receive.get(&(owner, p)).copied().unwrap_or(0) == 0)
            .map(|p| self.unread(owner, p))
            .sum()
    }
}

async fn rest_ok(s: &TestServer, path: &str, body: Value) -> Value {
    let r = s.rest(path, body.clone()).await;
    assert_eq!(r["ErrorCode"], 0, "{path} {body}: {r}");
    r
}

#[tokio::test]
async fn unread_counts_follow_the_rules_over_random_operations() {
    let s = TestServer::spawn().await;
    s.import(&USERS).await;
    let mut clients = Vec::new();
    for user in USERS {
        clients.push(WsClient::login(&s, user).await);
    }
    let mut model = Model::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut random = 0u32;
    for step in 0..STEPS {
        if rng.below(3) == 0 {
            s.clock.advance_secs(rng.below(3) as i64 + 1);
        }
        let now = s.clock.now_secs();
        let (a, b) = {
            let a = rng.below(USERS.len());
            (a, (a + 1 + rng.below(USERS.len() - 1)) % USERS.len())
        };
        let what = rng.below(100);
        let op;
        if what < 45 {
            // A send from a to b, one in five NoUnread.
            random += 1;
            let no_unread = rng.below(5) == 0;
            let mut body = json!({"From_Account": USERS[a], "To_Account": USERS[b], "MsgRandom": random,
                "MsgBody": text(&format!("m{random}"))});
            if no_unread {
                body["SendMsgControl"] = json!(["NoUnread"]);
            }
            let r = rest_ok(&s, "openim/sendmsg", body).await;
            let key = r["MsgKey"].as_str().unwrap().to_owned();
            let time = r["MsgTime"].as_i64().unwrap();
            model.msgs.push(Msg {
                from: a,
                to: b,
                key,
                time,
                no_unread,
                recalled: false,
                gone_for_sender: false,
                gone_for_recipient: false,
            });
            op = format!("send {a}>{b} no_unread {no_unread}");
        } else if what < 60 {
            // a reads what b sent, up to now or a moment ago.
            let time = now - rng.below(4) as i64;
            rest_ok(
                &s,
                "openim/admin_set_msg_read",
                json!({"Report_Account": USERS[a], "Peer_Account": USERS[b], "MsgReadTime": time}),
            )
            .await;
            let read = model.read.entry((a, b)).or_default();
            *read = (*read).max(time.min(now));
            op = format!("read {a}<{b} {time}");
        } else if what < 72 {
            // The admin recalls a random message not recalled yet.
            let candidates: Vec<usize> = (0..model.msgs.len()).filter(|&i| !model.msgs[i].recalled).collect();
            if candidates.is_empty() {
                continue;
            }
            let i = candidates[rng.below(candidates.len())];
            let m = &model.msgs[i];
            let body = json!({"From_Account": USERS[m.from], "To_Account": USERS[m.to], "MsgKey": m.key});
            rest_ok(&s, "openim/admin_msgwithdraw", body).await;
            model.msgs[i].recalled = true;
            op = format!("recall #{i}");
        } else if what < 87 {
            // One side deletes a random message from its view, through REST or its own client.
            let candidates: Vec<usize> = (0..model.msgs.len())
                .filter(|&i| {
                    let m = &model.msgs[i];
                    (m.from == a && !m.gone_for_sender) || (m.to == a && !m.gone_for_recipient)
                })
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let i = candidates[rng.below(candidates.len())];
            let (key, peer) = {
                let m = &model.msgs[i];
                (m.key.clone(), if m.from == a { m.to } else { m.from })
            };
            if rng.below(2) == 0 {
                let body = json!({"Operator_Account": USERS[a], "Peer_Account": USERS[peer], "MsgKeyList": [key]});
                let r = rest_ok(&s, "openim/delete_c2c_msg_ramble", body).await;
                assert_eq!(r["InvalidMsgKeyList"], json!([]), "{r}");
            } else {
                let r = clients[a].request(json!({"op": "delete", "peer": USERS[peer], "msg_keys": [key]})).await;
                assert_eq!(r["deleted"], json!([key]), "{r}");
            }
            let m = &mut model.msgs[i];
            if m.from == a {
                m.gone_for_sender = true;
            } else {
                m.gone_for_recipient = true;
            }
            op = format!("delete #{i} by {a}");
        } else if what < 92 {
            // a deletes its conversation with b, with its history: nothing of it is left on a's side.
            let body = json!({"From_Account": USERS[a], "Type": 1, "To_Account": USERS[b], "ClearRamble": 1});
            rest_ok(&s, "recentcontact/delete", body).await;
            for m in model.msgs.iter_mut() {
                if m.from == a && m.to == b {
                    m.gone_for_sender = true;
                }
                if m.to == a && m.from == b {
                    m.gone_for_recipient = true;
                }
            }
            model.read.remove(&(a, b));
            op = format!("clear {a}-{b}");
        } else {
            // a changes its receive option for b from a client.
            let opt = rng.below(3) as u8;
            let r = clients[a].request(json!({"op": "set_conversation", "peer": USERS[b], "receive_opt": opt})).await;
            assert_eq!(r["op"], "ok", "{r}");
            model.receive.insert((a, b), opt);
            op = format!("receive {a}<{b} {opt}");
        }
        let touched: Vec<usize> = if step.is_multiple_of(10) { (0..USERS.len()).collect() } else { vec![a, b] };
        check(&s, &mut clients, &model, &touched, step, &op).await;
    }
}

/// The counts of the users `owners` from REST (per peer and total), and every tenth step (when `owners` is
/// every user) from the client's list.
async fn check(s: &TestServer, clients: &mut [WsClient], model: &Model, owners: &[usize], step: usize, op: &str) {
    for &owner in owners {
        let user = &USERS[owner];
        let peers: Vec<&str> = USERS.iter().copied().filter(|p| p != user).collect();
        let r = rest_ok(s, "openim/get_c2c_unread_msg_num", json!({"To_Account": user, "Peer_Account": peers})).await;
        for item in r["C2CUnreadMsgNumList"].as_array().unwrap() {
            let peer = USERS.iter().position(|u| *u == item["Peer_Account"]).unwrap();
            let want = model.unread(owner, peer);
            assert_eq!(item["C2CUnreadMsgNum"].as_u64(), Some(want), "step {step} ({op}): {user} from {}", USERS[peer]);
        }
        let r = rest_ok(s, "openim/get_c2c_unread_msg_num", json!({"To_Account": user})).await;
        assert_eq!(r["AllC2CUnreadMsgNum"].as_u64(), Some(model.total(owner)), "step {step} ({op}): {user}'s total");
        if step.is_multiple_of(10) {
            let listed = clients[owner].request(json!({"op": "conversations"})).await;
            for c in listed["items"].as_array().unwrap() {
                let peer = USERS.iter().position(|u| *u == c["peer"]).unwrap();
                let want = model.unread(owner, peer);
                assert_eq!(c["unread"].as_u64(), Some(want), "step {step} ({op}): {user}'s list, {}", USERS[peer]);
            }
        }
    }
}
