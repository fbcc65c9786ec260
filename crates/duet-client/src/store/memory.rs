//! [`MemoryStore`]: a local store that lives as long as the client; nothing survives a restart, so a
//! new client starts from cursor 0 and receives what the server's log still holds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{Batch, Coverage, LocalStore, MessageRecord, Position, Snapshot, StoreError};
use crate::model::{Conversation, ConversationSettings, Message};

/// An in-memory [`LocalStore`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    cursor: u64,
    device: Option<String>,
    /// peer -> msg_key -> message.
    messages: HashMap<String, HashMap<String, MessageRecord>>,
    /// peer -> conv_seq -> msg_key.
    by_conv_seq: HashMap<String, BTreeMap<u64, String>>,
    /// peer -> position -> msg_key.
    by_position: HashMap<String, BTreeMap<Position, String>>,
    coverage: HashMap<String, Coverage>,
    /// peer -> (unread, time, last msg_key, peer read time, settings).
    conversations: HashMap<String, (u64, i64, Option<String>, i64, ConversationSettings)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters more
        // than losing the store, so recover the guard.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn upsert(&mut self, rec: &MessageRecord) {
        let peer = rec.peer.as_str();
        let msgs = self.messages.entry(peer.to_owned()).or_default();
        let merged = match msgs.get(&rec.message.msg_key) {
            Some(old) => merge(old, rec),
            None => rec.clone(),
        };
        if let Some(old) = msgs.get(&merged.message.msg_key) {
            // A key names one message; should its position or number change, the old index entries go.
            if let Some(index) = self.by_conv_seq.get_mut(peer) {
                index.remove(&old.message.conv_seq);
            }
            if let Some(index) = self.by_position.get_mut(peer) {
                index.remove(&old.message.position());
            }
        }
        if merged.message.conv_seq > 0 {
            let key = merged.message.msg_key.clone();
            self.by_conv_seq.entry(peer.to_owned()).or_default().insert(merged.message.conv_seq, key.clone());
            self.by_position.entry(peer.to_owned()).or_default().insert(merged.message.position(), key);
        }
        msgs.insert(merged.message.msg_key.clone(), merged);
    }
}

impl State {
    /// Removes the messages of `peer` that `gone` picks, with their index entries.
    fn remove(&mut self, peer: &str, gone: impl Fn(&Message) -> bool) {
        let Some(msgs) = self.messages.get_mut(peer) else { return };
        let doomed: Vec<MessageRecord> = msgs.values().filter(|r| gone(&r.message)).cloned().collect();
        for r in doomed {
            msgs.remove(&r.message.msg_key);
            if let Some(index) = self.by_conv_seq.get_mut(peer) {
                index.remove(&r.message.conv_seq);
            }
            if let Some(index) = self.by_position.get_mut(peer) {
                index.remove(&r.message.position());
            }
        }
    }
}

/// An update of a stored message: the new content, with flags and the log seq kept once set.
pub(super) fn merge(old: &MessageRecord, new: &MessageRecord) -> MessageRecord {
    let mut m = new.clone();
    m.sent_here |= old.sent_here;
    if old.message.recalled && !m.message.recalled {
        m.message.recalled = true;
        m.message.revoker = old.message.revoker.clone();
        m.message.elems.clear();
        m.message.cloud_custom_data.clear();
    }
    if old.message.version > m.message.version {
        m.message.version = old.message.version;
        m.message.elems = old.message.elems.clone();
        m.message.cloud_custom_data = old.message.cloud_custom_data.clone();
    }
    m.message.receipt_time = m.message.receipt_time.or(old.message.receipt_time);
    m.message.log_seq = m.message.log_seq.or(old.message.log_seq);
    m
}

impl LocalStore for MemoryStore {
    fn is_blocking(&self) -> bool {
        false
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        let st = self.state();
        let conversations = st
            .conversations
            .iter()
            .map(|(peer, (unread, time, last, peer_read_time, settings))| Conversation {
                peer: peer.clone(),
                last: last
                    .as_ref()
                    .and_then(|k| st.messages.get(peer).and_then(|m| m.get(k)).map(|r| r.message.clone())),
                unread: *unread,
                time: *time,
                peer_read_time: *peer_read_time,
                settings: settings.clone(),
            })
            .collect();
        let coverage = st.coverage.iter().map(|(peer, c)| (peer.clone(), *c)).collect();
        Ok(Snapshot { cursor: st.cursor, device: st.device.clone(), conversations, coverage })
    }

    fn set_device(&self, device: &str) -> Result<(), StoreError> {
        self.state().device = Some(device.to_owned());
        Ok(())
    }

    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut st = self.state();
        for (peer, key) in &batch.deletions {
            st.remove(peer, |m| m.msg_key == *key);
        }
        for (peer, upto) in &batch.clears {
            st.remove(peer, |m| m.conv_seq <= *upto);
        }
        for peer in &batch.removed_conversations {
            st.conversations.remove(peer);
        }
        for rec in &batch.messages {
            st.upsert(rec);
        }
        for (peer, key, by) in &batch.recalls {
            if let Some(r) = st.messages.get_mut(peer).and_then(|m| m.get_mut(key)) {
                r.message.recalled = true;
                r.message.revoker = by.clone();
                r.message.elems.clear();
                r.message.cloud_custom_data.clear();
            }
        }
        for (peer, key, time) in &batch.receipts {
            if let Some(r) = st.messages.get_mut(peer).and_then(|m| m.get_mut(key)) {
                r.message.receipt_time = r.message.receipt_time.or(Some(*time));
            }
        }
        if batch.replace_conversations {
            st.conversations.clear();
        }
        for c in &batch.conversations {
            if let Some(last) = &c.last {
                st.upsert(&MessageRecord { peer: c.peer.clone(), message: last.clone(), sent_here: false });
            }
            let last = c.last.as_ref().map(|m| m.msg_key.clone());
            st.conversations.insert(c.peer.clone(), (c.unread, c.time, last, c.peer_read_time, c.settings.clone()));
        }
        if let Some(cursor) = batch.cursor {
            st.cursor = cursor;
        }
        for (peer, c) in &batch.coverage {
            st.coverage.insert(peer.clone(), *c);
        }
        Ok(())
    }

    fn message(&self, peer: &str, msg_key: &str) -> Result<Option<MessageRecord>, StoreError> {
        Ok(self.state().messages.get(peer).and_then(|m| m.get(msg_key)).cloned())
    }

    fn messages_before(&self, peer: &str, before: Option<Position>, limit: usize) -> Result<Vec<Message>, StoreError> {
        let st = self.state();
        let (Some(index), Some(msgs)) = (st.by_position.get(peer), st.messages.get(peer)) else {
            return Ok(Vec::new());
        };
        let below = before.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(index
            .range((std::ops::Bound::Unbounded, below))
            .rev()
            .filter_map(|(_, key)| msgs.get(key).map(|r| r.message.clone()))
            .take(limit)
            .collect())
    }

    fn conv_seqs_above(&self, peer: &str, after: u64, limit: usize) -> Result<Vec<u64>, StoreError> {
        let st = self.state();
        Ok(st.by_conv_seq.get(peer).map_or_else(Vec::new, |index| {
            index.range(after.saturating_add(1)..).map(|(c, _)| *c).take(limit).collect()
        }))
    }

    fn count_from_after(&self, peer: &str, time: i64) -> Result<u64, StoreError> {
        let st = self.state();
        Ok(st.messages.get(peer).map_or(0, |msgs| {
            msgs.values().filter(|r| r.message.from == peer && r.message.time > time && r.message.conv_seq > 0).count()
                as u64
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        super::super::conformance::run(&super::MemoryStore::new());
    }
}
