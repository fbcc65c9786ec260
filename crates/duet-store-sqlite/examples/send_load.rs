//! Drives the store's send path alone, for repeatable comparisons of its cost:
//! `valgrind --tool=callgrind target/release/examples/send_load 20000` counts the instructions
//! (docs/benchmarks.md: the log entry "2026-11-26, `d003d11`: the write path slimmed" counts each step,
//! and the rules cite its counts). Without valgrind it prints the wall-clock rate too.
//!
//! 1 000 accounts in 500 pairs; `N` one-to-one sends with ~100-byte bodies, 512 in flight so group
//! commit batches them as under load (a second argument sets how many: 8 gives batches like those of a
//! steady 5 000 msg/s). A third argument, `chat`, sends chat-like text instead of 100 `x`s (five Latin
//! words of a 2 000-word vocabulary and two Chinese words of two characters, ~40 bytes, like
//! `duet bench search`'s corpus), which gives the search index real terms to write.

use std::sync::Arc;
use std::time::Instant;

use duet_core::model::{NewAccount, Outgoing, SenderCopy};
use duet_core::store::{AccountStore, MessageStore, SendPlan};
use duet_store_sqlite::{Durability, SqliteStore};

const USERS: usize = 1000;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let in_flight: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(512);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(SqliteStore::open(&dir.path().join("duet.db"), Durability::Relaxed).expect("opening"));
    let accounts = (0..USERS).map(|i| NewAccount { id: format!("user{i}"), nick: None, face_url: None }).collect();
    store.import_accounts(accounts, 1_700_000_000).await.expect("importing accounts");

    let chat = std::env::args().nth(3).is_some_and(|a| a == "chat");
    let text = |i: usize| if chat { chat_text(i) } else { "x".repeat(100) };
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::<Result<_, duet_core::store::StoreError>>::new();
    for i in 0..n {
        if tasks.len() >= in_flight {
            tasks.join_next().await.expect("a task").expect("send task").expect("send");
        }
        let from = i % USERS;
        let to = from ^ 1;
        let now_ms = 1_700_000_000_000 + i as i64;
        let mut dedup_key = [0u8; 16];
        dedup_key[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let plan = SendPlan {
            msg: Outgoing {
                from: format!("user{from}"),
                to: vec![format!("user{to}")],
                seq: None,
                random: i as u32,
                body: format!(r#"[{{"MsgType":"TIMTextElem","MsgContent":{{"Text":"{}"}}}}]"#, text(i)),
                cloud_custom_data: String::new(),
                push_info: None,
                lifetime_secs: 604_800,
                sender_copy: SenderCopy::Sync,
                no_unread: false,
                no_last_msg: false,
                need_read_receipt: false,
            },
            time: now_ms / 1000,
            dedup_key,
            dedup_since_ms: now_ms - 600_000,
            now_ms,
            offline_until: now_ms / 1000 + 604_800,
            max_conversations: 100,
            push: false,
            after_send: None,
        };
        let store = store.clone();
        tasks.spawn(async move { store.send(plan).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("send task").expect("send");
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{n} sends in {secs:.2} s: {:.0}/s", n as f64 / secs);
}

/// Message `i`'s chat-like text: five Latin words of a 2 000-word vocabulary and two Chinese words of
/// two characters (of 50), picked by a fixed pseudo-random sequence, so runs are repeatable.
fn chat_text(i: usize) -> String {
    const SYLLABLES: [&str; 20] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "so", "vi", "de", "po", "an", "el", "ir", "on", "us", "ba", "ce", "fu",
        "gi", "ho",
    ];
    const HAN: &str =
        "我你他们的是不了在有人这中大为上个国和地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用";
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut words = Vec::with_capacity(6);
    for _ in 0..5 {
        let w = next(2_000) as usize;
        words.push(format!("{}{}{}", SYLLABLES[w % 20], SYLLABLES[w / 20 % 20], SYLLABLES[w / 400 % 20]));
    }
    let han: Vec<char> = HAN.chars().collect();
    let mut cn = String::new();
    for _ in 0..2 {
        let w = next(1_000) as usize;
        cn.push(han[w % 50]);
        cn.push(han[w / 50 % 50]);
    }
    words.push(cn);
    words.join(" ")
}
