//! The relation cache's bound: UserIDs that name no account never get a cache entry, whatever path names
//! them (client sends refused or not, every relationship operation), in both permission modes.
//!
//! The cache is internal, so this drives the domain ([`Core`]) directly over the real SQLite store and
//! reads its hidden size counter; the client protocol's own check of UserIDs is tested in
//! `duet-client/tests/friends.rs`.

use std::sync::Arc;

use duet_core::clock::ManualClock;
use duet_core::messages::{Draft, Encoded, Origin, SendError};
use duet_core::model::{NewAccount, SenderCopy, Sent};
use duet_core::relations::{AddFriend, Direction, Friend, Permissions};
use duet_core::{Core, Error};
use duet_test_support::{SDKAPPID, SECRET_KEY, T0_MS};

async fn core(friends_only: bool) -> (Core, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = duet_server::Config::new(SDKAPPID, SECRET_KEY, dir.path());
    config.core.permissions = Permissions { friends_only, ..Permissions::default() };
    let store = duet_server::open_store(&config).await.expect("opening the store");
    let core =
        Core::open(config.core.clone(), store, Arc::new(ManualClock::new(T0_MS)), duet_core::Adapters::default())
            .await
            .expect("opening");
    let accounts = ["alice", "bob"].map(|id| NewAccount { id: id.into(), nick: None, face_url: None });
    core.accounts().import(accounts.into()).await.expect("importing");
    (core, dir)
}

fn text(from: &str, to: &str) -> Draft<Encoded> {
    Draft {
        from: from.into(),
        to: vec![to.into()],
        seq: None,
        random: 1,
        content: Encoded {
            body: r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]"#.into(),
            ..Default::default()
        },
        lifetime_secs: 604_800,
        sender_copy: SenderCopy::History,
        no_unread: false,
        no_last_msg: false,
        need_read_receipt: false,
        callback: None,
    }
}

/// A user's own send (the permission policy applies).
async fn client_send(core: &Core, draft: Draft<Encoded>) -> Result<Sent, Error> {
    core.messages().send(Origin::Client, draft).await.map_err(|e| match e {
        SendError::Domain(e) => e,
        SendError::Content(never) => match never {},
    })
}

async fn made_up_ids_leave_no_cache_entry(friends_only: bool) {
    let (core, _dir) = core(friends_only).await;
    core.relations()
        .add_friends(
            "alice",
            vec![AddFriend { to: "bob".into(), ..Default::default() }],
            Direction::Both,
            true,
            &admin(),
        )
        .await
        .expect("alice and bob become friends");
    client_send(&core, text("alice", "bob")).await.expect("friends may talk");
    let before = core.relations().cached_relation_users();
    assert!(before >= 2, "alice and bob are cached: {before}");

    for i in 0..50 {
        let ghost = format!("ghost{i}");
        let sent = client_send(&core, text("alice", &ghost)).await;
        match (friends_only, sent) {
            (true, Err(Error::Refused(_))) => {}
            (false, Ok(sent)) => assert_eq!(sent.failed, std::slice::from_ref(&ghost)),
            (_, other) => panic!("a send to {ghost}: {other:?}"),
        }
        // A send from an account that does not exist (the check reads the sender's relations too).
        let _ = client_send(&core, text(&ghost, "alice")).await;

        let r = core
            .relations()
            .delete_friends("alice", vec![ghost.clone()], Direction::Both, &admin())
            .await
            .expect("delete");
        assert!(r[0].is_err());
        assert!(core.relations().accept_friend("alice", &ghost, Direction::Both, &admin()).await.is_err());
        assert!(core.relations().decline_friend("alice", &ghost).await.is_err());
        assert!(core.relations().accept_friend(&ghost, "alice", Direction::Both, &admin()).await.is_err());
        let r = core.relations().add_to_blacklist("alice", vec![ghost.clone()], &admin()).await.expect("black add");
        assert!(r[0].is_err());
        let r =
            core.relations().remove_from_blacklist("alice", vec![ghost.clone()], &admin()).await.expect("black delete");
        assert!(r[0].is_err());
        let item = AddFriend { to: ghost.clone(), ..Default::default() };
        let r = core.relations().add_friends("alice", vec![item], Direction::Both, false, &admin()).await.expect("add");
        assert!(r[0].is_err());
        let r = core.relations().import_friends("alice", vec![Friend::new(&ghost, 0)], &admin()).await.expect("import");
        assert!(r[0].is_err());
        assert_eq!(core.relations().check_friends("alice", vec![ghost.clone()]).await.expect("check"), [None]);
        assert_eq!(core.relations().check_blacklists("alice", vec![ghost.clone()]).await.expect("check"), [None]);
        assert!(core.relations().friends(&ghost).await.is_err());
    }
    assert_eq!(core.relations().cached_relation_users(), before, "made-up UserIDs grew the relation cache");
}

#[tokio::test]
async fn made_up_ids_leave_no_cache_entry_in_default_mode() {
    made_up_ids_leave_no_cache_entry(false).await;
}

#[tokio::test]
async fn made_up_ids_leave_no_cache_entry_in_friends_only_mode() {
    made_up_ids_leave_no_cache_entry(true).await;
}

#[tokio::test]
async fn a_deleted_account_leaves_the_cache_and_a_re_created_one_starts_afresh() {
    let (core, _dir) = core(true).await;
    let bob = AddFriend { to: "bob".into(), ..Default::default() };
    core.relations().add_friends("alice", vec![bob], Direction::Both, true, &admin()).await.expect("friends");
    client_send(&core, text("alice", "bob")).await.expect("friends may talk");
    assert_eq!(core.accounts().delete(vec!["bob".into()]).await.expect("deleting"), [true]);
    let bob = NewAccount { id: "bob".into(), nick: None, face_url: None };
    core.accounts().import(vec![bob]).await.expect("re-creating bob");
    assert!(core.relations().friends("bob").await.expect("bob's friends").is_empty());
    assert!(core.relations().friends("alice").await.expect("alice's friends").is_empty());
    assert!(matches!(client_send(&core, text("bob", "alice")).await, Err(Error::Refused(_))));
}

/// Relation writes racing an account deletion: whichever comes first, no relation of the deleted account
/// survives it (in the cache or in the store), so an account re-created with its UserID starts afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relation_writes_racing_an_account_deletion_leave_nothing_behind() {
    let (core, dir) = core(false).await;
    let core = Arc::new(core);
    for i in 0..30 {
        let id = format!("victim{i}");
        let account = || vec![NewAccount { id: id.clone(), nick: None, face_url: None }];
        core.accounts().import(account()).await.expect("importing");
        let (c1, c2, c3, c4) = (core.clone(), core.clone(), core.clone(), core.clone());
        let (v1, v2, v3, v4) = (id.clone(), id.clone(), id.clone(), id.clone());
        let delete = tokio::spawn(async move { c1.accounts().delete(vec![v1]).await });
        let import =
            tokio::spawn(
                async move { c2.relations().import_friends("alice", vec![Friend::new(&v2, 0)], &admin()).await },
            );
        let block = tokio::spawn(async move { c3.relations().add_to_blacklist("bob", vec![v3], &admin()).await });
        let add = tokio::spawn(async move {
            let item = AddFriend { to: v4, ..Default::default() };
            c4.relations().add_friends("bob", vec![item], Direction::Both, false, &admin()).await
        });
        assert_eq!(delete.await.unwrap().expect("deleting"), [true]);
        for r in [import.await.unwrap(), block.await.unwrap()] {
            r.expect("the write fails per item, not as a whole");
        }
        add.await.unwrap().expect("the request fails per item, not as a whole");
        core.accounts().import(account()).await.expect("re-creating");
        assert!(core.relations().friends(&id).await.unwrap().is_empty(), "{id} inherited friends");
        assert!(core.relations().blacklist(&id).await.unwrap().is_empty(), "{id} inherited a blacklist");
        assert_eq!(core.relations().friend_requests(&id).await.unwrap(), (vec![], vec![]), "{id} inherited requests");
        let checked = core.relations().check_friends("alice", vec![id.clone()]).await.unwrap();
        assert_eq!(checked, [Some(duet_core::relations::Relation::None)], "alice still has {id}");
        let checked = core.relations().check_blacklists("bob", vec![id.clone()]).await.unwrap();
        assert_eq!(checked, [Some(duet_core::relations::Relation::None)], "bob still blocks {id}");
        let (_, outgoing) = core.relations().friend_requests("bob").await.unwrap();
        assert!(outgoing.is_empty(), "bob still asks {id}: {outgoing:?}");
    }
    // The store agrees with the cache: a fresh domain over the same data sees nothing of the victims.
    drop(core);
    let config = duet_server::Config::new(SDKAPPID, SECRET_KEY, dir.path());
    let store = duet_server::open_store(&config).await.expect("reopening the store");
    let fresh =
        Core::open(config.core.clone(), store, Arc::new(ManualClock::new(T0_MS)), duet_core::Adapters::default())
            .await
            .expect("opening");
    assert!(fresh.relations().friends("alice").await.unwrap().iter().all(|f| f.peer == "bob"));
    assert!(fresh.relations().blacklist("bob").await.unwrap().is_empty());
    assert!(fresh.relations().friend_requests("bob").await.unwrap().1.is_empty());
}

/// The admin API, as the source of the relation writes these tests make.
fn admin() -> duet_core::callbacks::Source {
    duet_core::callbacks::Source::rest("administrator")
}
