//! When the local store can answer a history page by itself.
//!
//! Messages of a conversation carry `conv_seq`, numbered from 1 without gaps for both sides. A page of
//! `count` messages older than an anchor at `conv_seq` *c* is complete locally when the store holds
//! *c−1, c−2, …* down to *c−count*, or down to 1 (the beginning of the conversation). Any hole means
//! the local copy is incomplete there, and the client asks the server instead.

use crate::model::Message;

/// The page, if `local` (the stored messages below `below`, highest `conv_seq` first, at most `count`)
/// holds every `conv_seq` from `below − 1` down to `max(1, below − count)`.
pub(crate) fn complete_page(below: u64, count: usize, local: Vec<Message>) -> Option<Vec<Message>> {
    let wanted = usize::try_from(below.saturating_sub(1)).unwrap_or(usize::MAX).min(count);
    if local.len() < wanted {
        return None;
    }
    let consecutive = local.iter().take(wanted).enumerate().all(|(i, m)| m.conv_seq == below - 1 - i as u64);
    if !consecutive {
        return None;
    }
    let mut local = local;
    local.truncate(wanted);
    Some(local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::msg;

    fn local(conv_seqs: &[u64]) -> Vec<Message> {
        conv_seqs.iter().map(|&c| msg("alice", "bob", c, c as i64)).collect()
    }

    fn page(below: u64, count: usize, have: &[u64]) -> Option<Vec<u64>> {
        complete_page(below, count, local(have)).map(|v| v.iter().map(|m| m.conv_seq).collect())
    }

    #[test]
    fn consecutive_messages_answer_locally() {
        assert_eq!(page(9, 2, &[8, 7]), Some(vec![8, 7]));
        assert_eq!(page(9, 3, &[8, 7, 6]), Some(vec![8, 7, 6]));
    }

    #[test]
    fn a_hole_or_a_short_store_goes_to_the_server() {
        assert_eq!(page(9, 3, &[8, 6, 5]), None, "7 is missing");
        assert_eq!(page(9, 3, &[8, 7]), None, "6 was never stored");
        assert_eq!(page(9, 2, &[7, 6]), None, "the newest (8) is missing");
        assert_eq!(page(9, 2, &[]), None);
    }

    #[test]
    fn conv_seq_one_is_the_beginning() {
        assert_eq!(page(3, 10, &[2, 1]), Some(vec![2, 1]), "nothing exists before 1");
        assert_eq!(page(1, 10, &[]), Some(vec![]), "the anchor is the first message");
        assert_eq!(page(3, 10, &[2]), None, "1 is missing");
    }

    #[test]
    fn zero_count_is_an_empty_page() {
        assert_eq!(page(9, 0, &[]), Some(vec![]));
    }
}
