//! Accounts and profiles (`sql/accounts.sql`).

use async_trait::async_trait;
use duet_core::model::event::AfterEvent;
use duet_core::model::{Mute, NewAccount, ProfileValue, TAG_IMAGE, TAG_NICK};
use duet_core::store::{AccountStore, StoreError};

use crate::writer::Conn;
use crate::{PgStore, execute, query, query_opt};

/// A user's uid, read from the table (a write that changes the user's rows locks it instead: the writer's
/// [`crate::writer::Locks`]).
pub(crate) async fn uid(c: &deadpool_postgres::ClientWrapper, user_id: &str) -> Result<Option<i64>, StoreError> {
    Ok(query_opt(c, "SELECT uid FROM accounts WHERE user_id = $1", &[&user_id]).await?.map(|r| r.get(0)))
}

async fn put_profile(c: &Conn, uid: i64, tag: &str, value: &ProfileValue) -> Result<(), StoreError> {
    let (text, num) = match value {
        ProfileValue::Text(s) => (Some(s.as_str()), None),
        ProfileValue::Number(n) => (None, Some(i64::try_from(*n).unwrap_or(i64::MAX))),
    };
    execute(
        c,
        "INSERT INTO profiles (uid, tag, text, num) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (uid, tag) DO UPDATE SET text = excluded.text, num = excluded.num",
        &[&uid, &tag, &text, &num],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl AccountStore for PgStore {
    async fn import_accounts(&self, accounts: Vec<NewAccount>, now: i64) -> Result<(), StoreError> {
        let users = accounts.iter().map(|a| a.id.clone()).collect();
        self.writer()
            .write(users, move |c, _| {
                let accounts = accounts.clone();
                Box::pin(async move {
                    for a in &accounts {
                        // The uid comes back whether this inserted the row or found it (another node may
                        // have created it meanwhile: the unique index then waits for its commit).
                        let row = query_opt(
                            &c,
                            "INSERT INTO accounts (user_id, created_at) VALUES ($1, $2) \
                             ON CONFLICT (user_id) DO UPDATE SET user_id = excluded.user_id RETURNING uid",
                            &[&a.id, &now],
                        )
                        .await?
                        .ok_or_else(|| crate::invalid("an upsert returned no row"))?;
                        let uid: i64 = row.get(0);
                        for (tag, value) in [(TAG_NICK, &a.nick), (TAG_IMAGE, &a.face_url)] {
                            if let Some(v) = value {
                                put_profile(&c, uid, tag, &ProfileValue::Text(v.clone())).await?;
                            }
                        }
                    }
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    async fn delete_accounts(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError> {
        self.writer()
            .write(ids.clone(), move |c, locks| {
                let ids = ids.clone();
                Box::pin(async move {
                    let mut out = Vec::with_capacity(ids.len());
                    for id in &ids {
                        crate::relations::drop_user(&c, id).await?;
                        let Some(uid) = locks.uid(id) else {
                            out.push(false);
                            continue;
                        };
                        execute(&c, "DELETE FROM profiles WHERE uid = $1", &[&uid]).await?;
                        crate::messages::drop_user(&c, uid).await?;
                        crate::push::drop_user(&c, uid).await?;
                        execute(&c, "DELETE FROM accounts WHERE uid = $1", &[&uid]).await?;
                        out.push(true);
                    }
                    Ok((out, Vec::new()))
                })
            })
            .await
    }

    async fn accounts_exist(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError> {
        let c = self.reader().await?;
        let found: std::collections::HashSet<String> =
            query(&c, "SELECT user_id FROM accounts WHERE user_id = ANY($1)", &[&ids])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
        Ok(ids.iter().map(|id| found.contains(id)).collect())
    }

    async fn revoke_sigs(&self, id: String, before: i64) -> Result<bool, StoreError> {
        self.writer()
            .write(vec![id.clone()], move |c, _| {
                let id = id.clone();
                Box::pin(async move {
                    let n = execute(&c, "UPDATE accounts SET revoked_before = $2 WHERE user_id = $1", &[&id, &before])
                        .await?;
                    Ok((n > 0, Vec::new()))
                })
            })
            .await
    }

    async fn revocations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let c = self.reader().await?;
        let rows = query(&c, "SELECT user_id, revoked_before FROM accounts WHERE revoked_before > 0", &[]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn set_mute(&self, id: String, mute: Mute) -> Result<bool, StoreError> {
        self.writer()
            .write(vec![id.clone()], move |c, _| {
                let id = id.clone();
                Box::pin(async move {
                    let n = execute(
                        &c,
                        "UPDATE accounts SET c2c_mute_until = $2, group_mute_until = $3 WHERE user_id = $1",
                        &[&id, &mute.c2c_until, &mute.group_until],
                    )
                    .await?;
                    Ok((n > 0, Vec::new()))
                })
            })
            .await
    }

    async fn mutes(&self) -> Result<Vec<(String, Mute)>, StoreError> {
        let c = self.reader().await?;
        let rows = query(
            &c,
            "SELECT user_id, c2c_mute_until, group_mute_until FROM accounts \
             WHERE c2c_mute_until <> 0 OR group_mute_until <> 0",
            &[],
        )
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), Mute { c2c_until: r.get(1), group_until: r.get(2) })).collect())
    }

    async fn set_profile(
        &self,
        id: String,
        items: Vec<(String, ProfileValue)>,
        event: Option<AfterEvent>,
    ) -> Result<bool, StoreError> {
        self.writer()
            .write(vec![id.clone()], move |c, locks| {
                let (id, items, event) = (id.clone(), items.clone(), event.clone());
                Box::pin(async move {
                    let Some(uid) = locks.uid(&id) else {
                        return Ok((false, Vec::new()));
                    };
                    for (tag, value) in &items {
                        put_profile(&c, uid, tag, value).await?;
                    }
                    if let Some(event) = event {
                        crate::callbacks::queue_event(&c, event, None).await?;
                    }
                    Ok((true, Vec::new()))
                })
            })
            .await
    }

    async fn profiles(
        &self,
        ids: Vec<String>,
        tags: Vec<String>,
    ) -> Result<Vec<Option<Vec<(String, ProfileValue)>>>, StoreError> {
        let c = self.reader().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            let Some(uid) = uid(&c, id).await? else {
                out.push(None);
                continue;
            };
            let rows =
                query(&c, "SELECT tag, text, num FROM profiles WHERE uid = $1 AND tag = ANY($2)", &[&uid, &tags])
                    .await?;
            let values: std::collections::HashMap<String, ProfileValue> = rows
                .iter()
                .map(|r| {
                    let value = match r.get::<_, Option<String>>(1) {
                        Some(text) => ProfileValue::Text(text),
                        None => ProfileValue::Number(r.get::<_, Option<i64>>(2).unwrap_or(0).max(0) as u64),
                    };
                    (r.get(0), value)
                })
                .collect();
            // In the order of `tags`, as asked.
            out.push(Some(tags.iter().filter_map(|t| values.get(t).map(|v| (t.clone(), v.clone()))).collect()));
        }
        Ok(out)
    }
}
