//! The search of a user's own history (`MessageStore::search`): a `tsvector` per message that can be
//! found, in `message_search`, written in the commit that stores or edits the message.
#![allow(unused_variables)] // SCAFFOLD: being built.

use duet_core::model::{SearchPage, SearchQuery};
use duet_core::store::StoreError;

use crate::PgStore;
use crate::writer::Conn;

/// Indexes message `id` between `sender` and `receiver`, whose body (`MsgBody` as JSON) is `body`.
pub(crate) async fn index(c: &Conn, id: i64, sender: i64, receiver: i64, body: &str) -> Result<(), StoreError> {
    Ok(())
}

/// Takes message `id` out of the index (recalled, edited before its new text is indexed, purged).
pub(crate) async fn unindex(c: &Conn, id: i64) -> Result<(), StoreError> {
    Ok(())
}

/// Takes every message of account `uid` (sent or received) out of the index, with the account.
pub(crate) async fn drop_user(c: &Conn, uid: i64) -> Result<(), StoreError> {
    Ok(())
}

/// [`duet_core::store::MessageStore::search`].
pub(crate) async fn search(store: &PgStore, q: SearchQuery) -> Result<SearchPage, StoreError> {
    Err(crate::unbuilt())
}
