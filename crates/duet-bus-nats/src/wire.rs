//! The bus's messages as JSON: a batch of notices from one node. Fields are short (every send costs one
//! notice) and every enum is tagged, so a node skips a notice kind it does not know (a newer node's)
//! instead of the whole batch.

use duet_core::hub::{KickReason, Notice};
use duet_core::model::Mute;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub(crate) struct Batch {
    /// The publishing node, which skips its own batches.
    pub(crate) node: u64,
    pub(crate) notices: Vec<WireNotice>,
}

impl Batch {
    pub(crate) fn new(node: u64, notices: &[Notice]) -> Batch {
        Batch { node, notices: notices.iter().map(WireNotice::from).collect() }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "k")]
pub(crate) enum WireNotice {
    #[serde(rename = "e")]
    Entries { u: String, s: Vec<u64> },
    #[serde(rename = "kick")]
    Kick { u: String, reason: String, revoked_before: Option<i64>, deleted: bool },
    #[serde(rename = "mute")]
    Mute { u: String, c2c_until: i64, group_until: i64 },
    #[serde(rename = "rel")]
    Relations { users: Vec<String> },
    #[serde(rename = "typing")]
    Typing { to: String, from: String, typing: bool },
    #[serde(rename = "kick_device")]
    KickDevice { u: String, device: String, reason: String },
    /// A kind this version does not know.
    #[serde(other)]
    Unknown,
}

fn reason_name(r: KickReason) -> &'static str {
    match r {
        KickReason::OtherDevice => "other_device",
        KickReason::Admin => "admin",
        KickReason::Replaced => "replaced",
    }
}

fn reason_of(name: &str) -> KickReason {
    match name {
        "other_device" => KickReason::OtherDevice,
        "replaced" => KickReason::Replaced,
        _ => KickReason::Admin,
    }
}

impl From<&Notice> for WireNotice {
    fn from(n: &Notice) -> WireNotice {
        match n.clone() {
            Notice::Entries { user, seqs } => WireNotice::Entries { u: user, s: seqs },
            Notice::Kick { user, reason, revoked_before, deleted } => {
                WireNotice::Kick { u: user, reason: reason_name(reason).to_owned(), revoked_before, deleted }
            }
            Notice::Mute { user, mute } => {
                WireNotice::Mute { u: user, c2c_until: mute.c2c_until, group_until: mute.group_until }
            }
            Notice::Relations { users } => WireNotice::Relations { users },
            Notice::Typing { to, from, typing } => WireNotice::Typing { to, from, typing },
            Notice::KickDevice { user, device, reason } => {
                WireNotice::KickDevice { u: user, device, reason: reason_name(reason).to_owned() }
            }
        }
    }
}

impl WireNotice {
    /// The notice, or `None` for a kind this version does not know.
    pub(crate) fn into_notice(self) -> Option<Notice> {
        Some(match self {
            WireNotice::Entries { u, s } => Notice::Entries { user: u, seqs: s },
            WireNotice::Kick { u, reason, revoked_before, deleted } => {
                Notice::Kick { user: u, reason: reason_of(&reason), revoked_before, deleted }
            }
            WireNotice::Mute { u, c2c_until, group_until } => {
                Notice::Mute { user: u, mute: Mute { c2c_until, group_until } }
            }
            WireNotice::Relations { users } => Notice::Relations { users },
            WireNotice::Typing { to, from, typing } => Notice::Typing { to, from, typing },
            WireNotice::KickDevice { u, device, reason } => {
                Notice::KickDevice { user: u, device, reason: reason_of(&reason) }
            }
            WireNotice::Unknown => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_go_through_json_and_unknown_kinds_are_skipped() {
        let notices = vec![
            Notice::Entries { user: "bob".into(), seqs: vec![4, 5] },
            Notice::Kick { user: "a".into(), reason: KickReason::Admin, revoked_before: Some(9), deleted: false },
            Notice::Mute { user: "a".into(), mute: Mute { c2c_until: 5, group_until: 0 } },
            Notice::Relations { users: vec!["a".into(), "b".into()] },
            Notice::Typing { to: "b".into(), from: "a".into(), typing: true },
            Notice::KickDevice { user: "b".into(), device: "pc".into(), reason: KickReason::OtherDevice },
        ];
        let json = serde_json::to_string(&Batch::new(7, &notices)).unwrap();
        let back: Batch = serde_json::from_str(&json).unwrap();
        assert_eq!(back.node, 7);
        let back: Vec<Notice> = back.notices.into_iter().filter_map(WireNotice::into_notice).collect();
        assert_eq!(back, notices);
        assert!(json.contains(r#"{"k":"e","u":"bob","s":[4,5]}"#), "{json}");

        let newer = r#"{"node":1,"notices":[{"k":"someday","x":1},{"k":"e","u":"c","s":[1]}]}"#;
        let batch: Batch = serde_json::from_str(newer).unwrap();
        let read: Vec<Notice> = batch.notices.into_iter().filter_map(WireNotice::into_notice).collect();
        assert_eq!(read, [Notice::Entries { user: "c".into(), seqs: vec![1] }]);
    }
}
