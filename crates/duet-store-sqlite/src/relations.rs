//! The relationship chain's tables (`relations.sql`): friends and their custom tags, blacklists and pending
//! friend requests. Loads read on the read pool; writes go through the group-commit writer, one job per
//! batch of changes, so a batch is stored whole or not at all.

use async_trait::async_trait;
use duet_core::model::ProfileValue;
use duet_core::model::event::AfterEvent;
use duet_core::relations::{Blocked, Friend, FriendRequest, RelationChange, RelationData, RelationStore};
use duet_core::store::StoreError;
use rusqlite::{Connection, Result, params};

use crate::{SqliteStore, backend};

/// The tables, created if missing; run at open after the versioned schema.
pub(crate) const SCHEMA: &str = include_str!("relations.sql");

#[async_trait]
impl RelationStore for SqliteStore {
    async fn load_relations(&self, user: String) -> Result<RelationData, StoreError> {
        self.read(move |c| load(c, &user)).await
    }

    async fn apply_relations(&self, changes: Vec<RelationChange>, events: Vec<AfterEvent>) -> Result<(), StoreError> {
        self.writer.write(move |c, _| apply_all(c, &changes, events).map_err(backend)).await
    }
}

/// The changes in order, then the callback events: one job, so all or none.
fn apply_all(c: &Connection, changes: &[RelationChange], events: Vec<AfterEvent>) -> Result<()> {
    changes.iter().try_for_each(|ch| apply(c, ch))?;
    events.into_iter().try_for_each(|e| crate::callbacks::queue_event(c, e, None))
}

fn load(c: &Connection, user: &str) -> Result<RelationData> {
    let mut tags =
        c.prepare_cached("SELECT peer, tag, text, num FROM friend_tags WHERE owner = ?1 ORDER BY peer, tag")?;
    let tags: Vec<(String, String, ProfileValue)> = tags
        .query_map([user], |r| {
            let value = match r.get::<_, Option<i64>>(3)? {
                Some(n) => ProfileValue::Number(n.max(0) as u64),
                None => ProfileValue::Text(r.get::<_, Option<String>>(2)?.unwrap_or_default()),
            };
            Ok((r.get(0)?, r.get(1)?, value))
        })?
        .collect::<Result<_>>()?;
    let mut friends = c.prepare_cached(
        "SELECT peer, remark, groups, add_source, add_wording, add_time FROM friends WHERE owner = ?1",
    )?;
    let friends = friends
        .query_map([user], |r| {
            let groups: String = r.get(2)?;
            Ok(Friend {
                peer: r.get(0)?,
                remark: r.get(1)?,
                groups: groups.split('\n').filter(|g| !g.is_empty()).map(str::to_owned).collect(),
                add_source: r.get(3)?,
                add_wording: r.get(4)?,
                add_time: r.get(5)?,
                custom: Vec::new(),
            })
        })?
        .map(|f| {
            f.map(|mut f| {
                f.custom = tags.iter().filter(|(p, ..)| *p == f.peer).map(|(_, t, v)| (t.clone(), v.clone())).collect();
                f
            })
        })
        .collect::<Result<_>>()?;
    let mut blacklist = c.prepare_cached("SELECT peer, time FROM blacklist WHERE owner = ?1")?;
    let blacklist =
        blacklist.query_map([user], |r| Ok(Blocked { peer: r.get(0)?, time: r.get(1)? }))?.collect::<Result<_>>()?;
    let request = |r: &rusqlite::Row<'_>| {
        Ok(FriendRequest {
            from: r.get(0)?,
            to: r.get(1)?,
            wording: r.get(2)?,
            source: r.get(3)?,
            remark: r.get(4)?,
            group: r.get(5)?,
            time: r.get(6)?,
        })
    };
    const COLUMNS: &str = "requester, target, wording, source, remark, group_name, time";
    let incoming = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM friend_requests WHERE target = ?1"))?
        .query_map([user], request)?
        .collect::<Result<_>>()?;
    let outgoing = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM friend_requests WHERE requester = ?1"))?
        .query_map([user], request)?
        .collect::<Result<_>>()?;
    Ok(RelationData { friends, blacklist, incoming, outgoing })
}

fn apply(c: &Connection, change: &RelationChange) -> Result<()> {
    match change {
        RelationChange::PutFriend { owner, friend: f } => {
            c.prepare_cached(
                "INSERT OR REPLACE INTO friends (owner, peer, remark, groups, add_source, add_wording, add_time) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                owner,
                f.peer,
                f.remark,
                f.groups.join("\n"),
                f.add_source,
                f.add_wording,
                f.add_time
            ])?;
            c.prepare_cached("DELETE FROM friend_tags WHERE owner = ?1 AND peer = ?2")?.execute([owner, &f.peer])?;
            let mut put = c.prepare_cached(
                "INSERT OR REPLACE INTO friend_tags (owner, peer, tag, text, num) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (tag, value) in &f.custom {
                let (text, num) = match value {
                    ProfileValue::Text(s) => (Some(s.as_str()), None),
                    ProfileValue::Number(n) => (None, Some(i64::try_from(*n).unwrap_or(i64::MAX))),
                };
                put.execute(params![owner, f.peer, tag, text, num])?;
            }
        }
        RelationChange::DeleteFriend { owner, peer } => {
            c.prepare_cached("DELETE FROM friends WHERE owner = ?1 AND peer = ?2")?.execute([owner, peer])?;
            c.prepare_cached("DELETE FROM friend_tags WHERE owner = ?1 AND peer = ?2")?.execute([owner, peer])?;
        }
        RelationChange::PutBlocked { owner, entry } => {
            c.prepare_cached("INSERT OR REPLACE INTO blacklist (owner, peer, time) VALUES (?1, ?2, ?3)")?
                .execute(params![owner, entry.peer, entry.time])?;
        }
        RelationChange::DeleteBlocked { owner, peer } => {
            c.prepare_cached("DELETE FROM blacklist WHERE owner = ?1 AND peer = ?2")?.execute([owner, peer])?;
        }
        RelationChange::PutRequest(r) => {
            c.prepare_cached(
                "INSERT OR REPLACE INTO friend_requests (requester, target, wording, source, remark, group_name, time) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![r.from, r.to, r.wording, r.source, r.remark, r.group, r.time])?;
        }
        RelationChange::DeleteRequest { from, to } => {
            c.prepare_cached("DELETE FROM friend_requests WHERE requester = ?1 AND target = ?2")?
                .execute([from, to])?;
        }
    }
    Ok(())
}

/// Deletes every relation row that names `user`, on either side: part of deleting the account, in the
/// same transaction.
pub(crate) fn drop_user(c: &Connection, user: &str) -> Result<()> {
    for sql in [
        "DELETE FROM friends WHERE owner = ?1 OR peer = ?1",
        "DELETE FROM friend_tags WHERE owner = ?1 OR peer = ?1",
        "DELETE FROM blacklist WHERE owner = ?1 OR peer = ?1",
        "DELETE FROM friend_requests WHERE requester = ?1 OR target = ?1",
    ] {
        c.prepare_cached(sql)?.execute([user])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use duet_core::model::NewAccount;
    use duet_core::store::AccountStore;

    use super::*;
    use crate::Durability;

    fn account(id: &str) -> NewAccount {
        NewAccount { id: id.into(), nick: None, face_url: None }
    }

    fn request(from: &str, to: &str) -> FriendRequest {
        FriendRequest {
            from: from.into(),
            to: to.into(),
            wording: "hi".into(),
            source: "AddSource_Type_Web".into(),
            remark: String::new(),
            group: String::new(),
            time: 1,
        }
    }

    fn names(d: &RelationData, id: &str) -> bool {
        d.friends.iter().any(|f| f.peer == id)
            || d.blacklist.iter().any(|b| b.peer == id)
            || d.incoming.iter().any(|r| r.from == id)
            || d.outgoing.iter().any(|r| r.to == id)
    }

    /// Deleting an account deletes its relation rows in the same transaction: nothing is left for a
    /// re-created account with the same UserID to inherit, even if the process stops right after.
    #[tokio::test]
    async fn deleting_an_account_deletes_every_relation_row_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("duet.db"), Durability::Fsync).unwrap();
        store.import_accounts(["alice", "bob", "carol"].map(account).into(), 0).await.unwrap();
        let mut tagged = Friend::new("bob", 1);
        tagged.custom = vec![("Tag_SNS_Custom_X".into(), ProfileValue::Text("x".into()))];
        store
            .apply_relations(
                vec![
                    RelationChange::PutFriend { owner: "alice".into(), friend: tagged },
                    RelationChange::PutFriend { owner: "bob".into(), friend: Friend::new("alice", 1) },
                    RelationChange::PutBlocked {
                        owner: "carol".into(),
                        entry: Blocked { peer: "bob".into(), time: 1 },
                    },
                    RelationChange::PutBlocked {
                        owner: "bob".into(),
                        entry: Blocked { peer: "carol".into(), time: 1 },
                    },
                    RelationChange::PutRequest(request("bob", "carol")),
                    RelationChange::PutRequest(request("alice", "bob")),
                    RelationChange::PutFriend { owner: "alice".into(), friend: Friend::new("carol", 1) },
                    // A row left by an earlier version for an account deleted since.
                    RelationChange::PutFriend { owner: "alice".into(), friend: Friend::new("gone", 1) },
                ],
                Vec::new(),
            )
            .await
            .unwrap();

        assert_eq!(store.delete_accounts(vec!["bob".into(), "gone".into()]).await.unwrap(), [true, false]);
        // Reopen: what is checked is what was committed.
        drop(store);
        let store = SqliteStore::open(&dir.path().join("duet.db"), Durability::Fsync).unwrap();
        for user in ["alice", "carol"] {
            let d = store.load_relations(user.into()).await.unwrap();
            assert!(!names(&d, "bob") && !names(&d, "gone"), "{user}: {d:?}");
        }
        let alice = store.load_relations("alice".into()).await.unwrap();
        assert_eq!(alice.friends.iter().map(|f| f.peer.as_str()).collect::<Vec<_>>(), ["carol"]);
        store.import_accounts(vec![account("bob")], 2).await.unwrap();
        assert_eq!(store.load_relations("bob".into()).await.unwrap(), RelationData::default());
    }
}
