//! The outboxes with several nodes: two stores on one database claim at once, as two nodes' workers do.
//! No push or event is claimed twice, and one user's events go out in order (skipped when
//! `DUET_TEST_POSTGRES_URL` is unset).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use duet_core::model::event::{AfterEvent, EventKind};
use duet_core::model::{NewAccount, Platform, ProviderKind, PushDevice, Settle};
use duet_core::store::{AccountStore, CallbackStore, PushStore};
use duet_store_postgres::PgStore;
use duet_store_postgres::testing::TestDb;
use tokio_postgres::NoTls;

const T: i64 = 1_700_000_000;
const USERS: usize = 12;
const PER_USER: usize = 25;

fn state_change(user: &str, n: usize) -> AfterEvent {
    AfterEvent {
        user: user.to_owned(),
        time_ms: T * 1000,
        platform: "RESTAPI".into(),
        client_ip: None,
        kind: EventKind::StateChange { action: format!("Login{n}"), reason: "Register".into() },
    }
}

/// Two stores (two nodes) on one fresh schema.
async fn nodes() -> Option<(TestDb, Arc<PgStore>, Arc<PgStore>)> {
    let db = TestDb::create().await?;
    let a = PgStore::open(&db.url()).await.expect("opening node a");
    let b = PgStore::open(&db.url()).await.expect("opening node b");
    Some((db, Arc::new(a), Arc::new(b)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_claim_each_event_once_and_each_users_events_in_order() {
    let Some((_db, a, b)) = nodes().await else { return };
    // Interleaved users, several writes: ids of one user are spread over the outbox.
    for round in 0..PER_USER {
        let events = (0..USERS).map(|u| state_change(&format!("u{u}"), round)).collect();
        a.queue_events(events, T).await.unwrap();
    }
    // Each worker claims a few, notes them (while it holds them), then settles them done.
    let log: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..8 {
        let (store, log) = (if w % 2 == 0 { a.clone() } else { b.clone() }, log.clone());
        workers.push(tokio::spawn(async move {
            let mut idle = 0;
            while idle < 50 {
                let claimed = store.claim_events(format!("w{w}"), T, T + 600, 3).await.unwrap();
                if claimed.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle = 0;
                log.lock().unwrap().extend(claimed.iter().map(|e| (e.event.user.clone(), e.id)));
                let settled = claimed.iter().map(|e| (e.id, Settle::Done)).collect();
                store.settle_events(settled).await.unwrap();
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    let ids: HashSet<u64> = log.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), log.len(), "an event claimed twice");
    assert_eq!(log.len(), USERS * PER_USER, "every event claimed");
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (user, id) in &log {
        let before = last.insert(user, *id).unwrap_or(0);
        assert!(*id > before, "{user}'s event {id} claimed after its later event {before}");
    }
    assert_eq!(a.event_backlog().await.unwrap(), (0, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_claim_each_push_once() {
    let Some((db, a, b)) = nodes().await else { return };
    let users: Vec<NewAccount> =
        ["sender", "r1", "r2"].iter().map(|id| NewAccount { id: (*id).into(), nick: None, face_url: None }).collect();
    a.import_accounts(users, T).await.unwrap();
    for (user, device) in [("r1", "phone"), ("r1", "pad"), ("r2", "phone")] {
        let d = PushDevice {
            user: user.into(),
            device: device.into(),
            platform: Platform::IPhone,
            provider: ProviderKind::Apns,
            token: format!("{user}-{device}"),
            app_id: None,
            lang: None,
            seen_at: T,
        };
        assert!(a.register_device(d).await.unwrap());
    }
    // Messages and their pushes, written as a send's commit writes them.
    let (sql, conn) = tokio_postgres::connect(&db.url(), NoTls).await.unwrap();
    tokio::spawn(conn);
    let n = 100;
    sql.batch_execute(&format!(
        "INSERT INTO messages (sender, receiver, lo, hi, time, seq, random, conv_seq, body, cloud_custom_data, flags) \
         SELECT s.uid, r.uid, least(s.uid, r.uid), greatest(s.uid, r.uid), {T}, i, i, i, '[]', '', 0 \
         FROM generate_series(1, {n}) i, accounts s, accounts r \
         WHERE s.user_id = 'sender' AND r.user_id IN ('r1', 'r2'); \
         INSERT INTO push_outbox (uid, device, msg_id, msg_time, queued_at, next_at) \
         SELECT m.receiver, d.device, m.id, m.time, {T}, {T} FROM messages m JOIN push_devices d ON d.uid = m.receiver"
    ))
    .await
    .unwrap();
    let queued = a.push_backlog().await.unwrap().0;
    assert_eq!(queued, 3 * n);

    let mut workers = Vec::new();
    for w in 0..8 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim_pushes(format!("w{w}"), T, T + 600, 7).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|p| p.id));
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a push claimed twice");
    // What no worker got is held by nobody: a claim now finds it.
    let rest = a.claim_pushes("late".into(), T, T + 600, 1000).await.unwrap();
    assert!(rest.iter().all(|p| !unique.contains(&p.id)), "a held push claimed again");
    assert_eq!(unique.len() + rest.len(), queued as usize, "every push claimed");
}
