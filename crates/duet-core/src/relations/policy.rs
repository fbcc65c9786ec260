//! The permission policy of a client send (Tencent's "relationship check" and blacklist check): a pure
//! decision over what is known of the two users, so that every case is a row of a table test. The
//! app's admins are never checked; the caller leaves them out.

use crate::error::SendRefusal;

/// What the blacklist check does with a message from a blacklisted sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlacklistCheck {
    /// Tencent's default: the sender sees a normal success; the message is dropped.
    #[default]
    Silent,
    /// The sender is told (20007).
    Report,
}

/// Who may message whom on the client send path. Admin sends (REST, or an admin logged in as a client)
/// are never checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Tencent's "relationship check": only two-way friends may message each other.
    pub friends_only: bool,
    pub blacklist: BlacklistCheck,
}

/// The outcome of a client send's permission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Answer as if sent; store and deliver nothing.
    Drop,
}

/// What the policy needs to know of a sender and a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ties {
    /// The sender is in the recipient's blacklist.
    pub blocked: bool,
    /// The sender has the recipient as a friend.
    pub sender_has: bool,
    /// The recipient has the sender as a friend.
    pub recipient_has: bool,
}

/// The policy's answer for a send between two users: the blacklist first, then, friends-only, both
/// friend lists.
pub fn decide(policy: Permissions, ties: Ties) -> Result<Verdict, SendRefusal> {
    if ties.blocked {
        return match policy.blacklist {
            BlacklistCheck::Silent => Ok(Verdict::Drop),
            BlacklistCheck::Report => Err(SendRefusal::Blacklisted),
        };
    }
    if !policy.friends_only {
        return Ok(Verdict::Allow);
    }
    match (ties.sender_has, ties.recipient_has) {
        (true, true) => Ok(Verdict::Allow),
        (false, false) => Err(SendRefusal::NotFriends),
        (true, false) => Err(SendRefusal::NotRecipientsFriend),
        (false, true) => Err(SendRefusal::NotSendersFriend),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_of_the_policy() {
        use BlacklistCheck::{Report, Silent};
        use SendRefusal::*;
        use Verdict::*;
        let open = |blacklist| Permissions { friends_only: false, blacklist };
        let friends = |blacklist| Permissions { friends_only: true, blacklist };
        let ties = |blocked, sender_has, recipient_has| Ties { blocked, sender_has, recipient_has };
        #[rustfmt::skip]
        let table = [
            // policy           blocked sender_has recipient_has  answer
            (open(Silent),    ties(false, false, false), Ok(Allow)),
            (open(Silent),    ties(true,  true,  true),  Ok(Drop)),
            (open(Report),    ties(true,  false, false), Err(Blacklisted)),
            (open(Report),    ties(false, false, true),  Ok(Allow)),
            (friends(Silent), ties(false, true,  true),  Ok(Allow)),
            (friends(Silent), ties(false, false, false), Err(NotFriends)),
            (friends(Silent), ties(false, true,  false), Err(NotRecipientsFriend)),
            (friends(Silent), ties(false, false, true),  Err(NotSendersFriend)),
            // The blacklist decides before the friend lists.
            (friends(Silent), ties(true,  true,  true),  Ok(Drop)),
            (friends(Report), ties(true,  true,  true),  Err(Blacklisted)),
            (friends(Report), ties(false, true,  false), Err(NotRecipientsFriend)),
        ];
        for (i, (policy, ties, answer)) in table.into_iter().enumerate() {
            assert_eq!(decide(policy, ties), answer, "row {i}: {policy:?} {ties:?}");
        }
    }

    #[test]
    fn tencents_defaults_let_anyone_message_anyone_and_drop_blacklisted_senders_silently() {
        let policy = Permissions::default();
        assert!(!policy.friends_only);
        assert_eq!(policy.blacklist, BlacklistCheck::Silent);
        assert_eq!(decide(policy, Ties::default()), Ok(Verdict::Allow));
    }
}
