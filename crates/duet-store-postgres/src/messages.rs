//! Messages, conversations, the sync logs, history, and the export (`sql/messages.sql`).
#![allow(unused_variables)] // SCAFFOLD: the stubs below are being replaced.

use async_trait::async_trait;
use duet_core::model::event::AfterEvent;
use duet_core::model::{
    ConversationSettings, ConversationView, ExportCursor, ExportPage, HistoryPage, HistoryQuery, Import, LogPage,
    MsgKey, Purged, SearchPage, SearchQuery, SettingsChange, StoredMessage,
};
use duet_core::store::{
    Cutoffs, DeliveryHook, Edit, Imported, MessageExport, MessageStore, Modified, SendOutcome, SendPlan, StoreError,
    Withdrawn,
};

use crate::PgStore;
use crate::writer::Conn;

/// Deletes what names account `uid` as its owner (its sync log, its side of each conversation, its
/// conversation settings, its messages' search entries), in the transaction deleting the account.
pub(crate) async fn drop_user(c: &Conn, uid: i64) -> Result<(), StoreError> {
    let _ = (c, uid);
    Err(crate::unbuilt())
}

#[async_trait]
impl MessageStore for PgStore {
    fn set_delivery_hook(&self, hook: DeliveryHook) {
        self.writer().set_hook(hook);
    }

    async fn send(&self, plan: SendPlan) -> Result<SendOutcome, StoreError> {
        Err(crate::unbuilt())
    }

    async fn import(&self, msg: Import, offline_until: i64, max_conversations: usize) -> Result<Imported, StoreError> {
        Err(crate::unbuilt())
    }

    async fn history(&self, q: HistoryQuery) -> Result<HistoryPage, StoreError> {
        Err(crate::unbuilt())
    }

    async fn withdraw(
        &self,
        from: String,
        to: String,
        key: MsgKey,
        by: String,
        log_expire_at: i64,
        event: Option<AfterEvent>,
    ) -> Result<Withdrawn, StoreError> {
        Err(crate::unbuilt())
    }

    async fn set_read(
        &self,
        owner: String,
        peer: String,
        time: i64,
        log_expire_at: i64,
        event: Option<AfterEvent>,
    ) -> Result<bool, StoreError> {
        Err(crate::unbuilt())
    }

    async fn ack_receipts(
        &self,
        reader: String,
        sender: String,
        keys: Vec<MsgKey>,
        time: i64,
        log_expire_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn find_messages(
        &self,
        owner: String,
        peer: String,
        keys: Vec<MsgKey>,
    ) -> Result<Vec<Option<StoredMessage>>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn search(&self, q: SearchQuery) -> Result<SearchPage, StoreError> {
        Err(crate::unbuilt())
    }

    async fn unread(&self, owner: String, peers: Vec<String>) -> Result<Vec<u64>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn unread_total(&self, owner: String) -> Result<u64, StoreError> {
        Err(crate::unbuilt())
    }

    async fn latest_seq(&self, user: String) -> Result<Option<u64>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn log_after(&self, user: String, after: u64, limit: usize, max_bytes: usize) -> Result<LogPage, StoreError> {
        Err(crate::unbuilt())
    }

    async fn conversations(&self, user: String, limit: usize) -> Result<Vec<ConversationView>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn update_conversation(
        &self,
        owner: String,
        peer: String,
        change: SettingsChange,
        now: i64,
        log_expire_at: i64,
    ) -> Result<Option<ConversationSettings>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn modify(&self, edit: Edit, log_expire_at: i64) -> Result<Modified, StoreError> {
        Err(crate::unbuilt())
    }

    async fn delete_messages(
        &self,
        owner: String,
        peer: String,
        keys: Vec<MsgKey>,
        log_expire_at: i64,
    ) -> Result<Vec<bool>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn clear_conversation(
        &self,
        owner: String,
        peer: String,
        clear_history: bool,
        delete_conversation: bool,
        log_expire_at: i64,
    ) -> Result<bool, StoreError> {
        Err(crate::unbuilt())
    }

    async fn purge(&self, cutoffs: Cutoffs) -> Result<Purged, StoreError> {
        Err(crate::unbuilt())
    }
}

#[async_trait]
impl MessageExport for PgStore {
    async fn export_messages(
        &self,
        start: i64,
        end: i64,
        after: Option<ExportCursor>,
        limit: usize,
    ) -> Result<ExportPage, StoreError> {
        Err(crate::unbuilt())
    }
}
