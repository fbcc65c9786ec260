//! The relationship chain (`sql/relations.sql`): friends and their custom tags, blacklists and pending
//! friend requests. Loads read one snapshot; a batch of changes is one writer job, so it is stored whole or
//! not at all.

use async_trait::async_trait;
use duet_core::model::ProfileValue;
use duet_core::model::event::AfterEvent;
use duet_core::relations::{Blocked, Friend, FriendRequest};
use duet_core::store::{RelationChange, RelationData, RelationStore, StoreError};
use tokio_postgres::Row;

use crate::writer::Conn;
use crate::{PgStore, execute, snapshot, tx_query};

/// Deletes every relation row that names `user` on either side (with its account).
pub(crate) async fn drop_user(c: &Conn, user: &str) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM friends WHERE owner = $1 OR peer = $1",
        "DELETE FROM friend_tags WHERE owner = $1 OR peer = $1",
        "DELETE FROM blacklist WHERE owner = $1 OR peer = $1",
        "DELETE FROM friend_requests WHERE requester = $1 OR target = $1",
    ] {
        execute(c, sql, &[&user]).await?;
    }
    Ok(())
}

#[async_trait]
impl RelationStore for PgStore {
    async fn load_relations(&self, user: String) -> Result<RelationData, StoreError> {
        let mut c = self.reader().await?;
        let tx = snapshot(&mut c).await?;
        // Orders as the embedded store's keys give them (byte order: `COLLATE "C"`).
        let tags = tx_query(
            &tx,
            r#"SELECT peer, tag, text, num FROM friend_tags WHERE owner = $1 ORDER BY peer COLLATE "C", tag COLLATE "C""#,
            &[&user],
        )
        .await?;
        let tags: Vec<(String, String, ProfileValue)> = tags
            .iter()
            .map(|r| {
                let value = match r.get::<_, Option<i64>>(3) {
                    Some(n) => ProfileValue::Number(n.max(0) as u64),
                    None => ProfileValue::Text(r.get::<_, Option<String>>(2).unwrap_or_default()),
                };
                (r.get(0), r.get(1), value)
            })
            .collect();
        let friends = tx_query(
            &tx,
            r#"SELECT peer, remark, groups, add_source, add_wording, add_time FROM friends WHERE owner = $1
               ORDER BY peer COLLATE "C""#,
            &[&user],
        )
        .await?
        .iter()
        .map(|r| {
            let peer: String = r.get(0);
            let groups: String = r.get(2);
            let custom = tags.iter().filter(|(p, ..)| *p == peer).map(|(_, t, v)| (t.clone(), v.clone())).collect();
            Friend {
                peer,
                remark: r.get(1),
                groups: groups.split('\n').filter(|g| !g.is_empty()).map(str::to_owned).collect(),
                add_source: r.get(3),
                add_wording: r.get(4),
                add_time: r.get(5),
                custom,
            }
        })
        .collect();
        let blacklist =
            tx_query(&tx, r#"SELECT peer, time FROM blacklist WHERE owner = $1 ORDER BY peer COLLATE "C""#, &[&user])
                .await?
                .iter()
                .map(|r| Blocked { peer: r.get(0), time: r.get(1) })
                .collect();
        let incoming = tx_query(
            &tx,
            r#"SELECT requester, target, wording, source, remark, group_name, time FROM friend_requests
               WHERE target = $1 ORDER BY requester COLLATE "C""#,
            &[&user],
        )
        .await?
        .iter()
        .map(request)
        .collect();
        let outgoing = tx_query(
            &tx,
            r#"SELECT requester, target, wording, source, remark, group_name, time FROM friend_requests
               WHERE requester = $1 ORDER BY target COLLATE "C""#,
            &[&user],
        )
        .await?
        .iter()
        .map(request)
        .collect();
        // Ended here, not left to the drop (whose ROLLBACK is sent whenever the connection's task runs next).
        tx.commit().await.map_err(crate::backend)?;
        Ok(RelationData { friends, blacklist, incoming, outgoing })
    }

    async fn apply_relations(&self, changes: Vec<RelationChange>, events: Vec<AfterEvent>) -> Result<(), StoreError> {
        // Every user the changes name, on either side: a deletion of one of their accounts (which drops
        // the rows naming it) then runs before or after this batch, never between. And the events'
        // users, so that one user's events are numbered in commit order across nodes (see `callbacks`).
        let mut users: Vec<String> = changes.iter().flat_map(named).map(str::to_owned).collect();
        users.extend(events.iter().map(|e| e.user.clone()));
        users.sort_unstable();
        users.dedup();
        self.writer()
            .write(users, move |c, _| {
                let (changes, events) = (changes.clone(), events.clone());
                Box::pin(async move {
                    for change in &changes {
                        apply(&c, change).await?;
                    }
                    for event in events {
                        crate::callbacks::queue_event(&c, event, None).await?;
                    }
                    Ok(((), Vec::new()))
                })
            })
            .await
    }
}

/// The users whose rows `change` writes or whose name it stores.
fn named(change: &RelationChange) -> [&str; 2] {
    match change {
        RelationChange::PutFriend { owner, friend } => [owner, &friend.peer],
        RelationChange::DeleteFriend { owner, peer } | RelationChange::DeleteBlocked { owner, peer } => [owner, peer],
        RelationChange::PutBlocked { owner, entry } => [owner, &entry.peer],
        RelationChange::PutRequest(r) => [&r.from, &r.to],
        RelationChange::DeleteRequest { from, to } => [from, to],
    }
}

fn request(r: &Row) -> FriendRequest {
    FriendRequest {
        from: r.get(0),
        to: r.get(1),
        wording: r.get(2),
        source: r.get(3),
        remark: r.get(4),
        group: r.get(5),
        time: r.get(6),
    }
}

async fn apply(c: &Conn, change: &RelationChange) -> Result<(), StoreError> {
    match change {
        RelationChange::PutFriend { owner, friend: f } => {
            execute(
                c,
                "INSERT INTO friends (owner, peer, remark, groups, add_source, add_wording, add_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (owner, peer) DO UPDATE SET \
                 remark = excluded.remark, groups = excluded.groups, add_source = excluded.add_source, \
                 add_wording = excluded.add_wording, add_time = excluded.add_time",
                &[owner, &f.peer, &f.remark, &f.groups.join("\n"), &f.add_source, &f.add_wording, &f.add_time],
            )
            .await?;
            // Replaced whole: the custom values of the entry before are gone.
            execute(c, "DELETE FROM friend_tags WHERE owner = $1 AND peer = $2", &[owner, &f.peer]).await?;
            for (tag, value) in &f.custom {
                let (text, num) = match value {
                    ProfileValue::Text(s) => (Some(s.as_str()), None),
                    ProfileValue::Number(n) => (None, Some(i64::try_from(*n).unwrap_or(i64::MAX))),
                };
                execute(
                    c,
                    "INSERT INTO friend_tags (owner, peer, tag, text, num) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (owner, peer, tag) DO UPDATE SET text = excluded.text, num = excluded.num",
                    &[owner, &f.peer, tag, &text, &num],
                )
                .await?;
            }
        }
        RelationChange::DeleteFriend { owner, peer } => {
            execute(c, "DELETE FROM friends WHERE owner = $1 AND peer = $2", &[owner, peer]).await?;
            execute(c, "DELETE FROM friend_tags WHERE owner = $1 AND peer = $2", &[owner, peer]).await?;
        }
        RelationChange::PutBlocked { owner, entry } => {
            execute(
                c,
                "INSERT INTO blacklist (owner, peer, time) VALUES ($1, $2, $3) \
                 ON CONFLICT (owner, peer) DO UPDATE SET time = excluded.time",
                &[owner, &entry.peer, &entry.time],
            )
            .await?;
        }
        RelationChange::DeleteBlocked { owner, peer } => {
            execute(c, "DELETE FROM blacklist WHERE owner = $1 AND peer = $2", &[owner, peer]).await?;
        }
        RelationChange::PutRequest(r) => {
            execute(
                c,
                "INSERT INTO friend_requests (requester, target, wording, source, remark, group_name, time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (requester, target) DO UPDATE SET \
                 wording = excluded.wording, source = excluded.source, remark = excluded.remark, \
                 group_name = excluded.group_name, time = excluded.time",
                &[&r.from, &r.to, &r.wording, &r.source, &r.remark, &r.group, &r.time],
            )
            .await?;
        }
        RelationChange::DeleteRequest { from, to } => {
            execute(c, "DELETE FROM friend_requests WHERE requester = $1 AND target = $2", &[from, to]).await?;
        }
    }
    Ok(())
}
