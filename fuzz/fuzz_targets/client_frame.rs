//! The client protocol's frames: what the server does with the text of a WebSocket message
//! (`ClientFrame::parse`, then a send's checks: `validate_user_id`, `limits::check_message`), and the
//! message a send becomes as clients receive it (`Message`: its `size_bound`, which the server trusts
//! instead of encoding a page, and `elems`, which clients call). The same text is also read as a
//! server frame (`ServerFrame`), as the SDK reads what a server sends.
//!
//! WebSocket text messages are UTF-8 (the WebSocket layer refuses others), so other inputs are skipped.

#![no_main]

use duet_proto::client::{
    ClientFrame, Entry, MAX_SEARCH_KEYWORD_BYTES, MAX_SEARCH_KEYWORDS, MAX_SEARCH_PAGE, Message, SearchFilters,
    ServerFrame,
};
use duet_proto::elem::validate_elems;
use duet_proto::limits::{self, MAX_MESSAGE_BYTES, MAX_SAFE_INTEGER};
use duet_proto::rest::{format_msg_key, parse_msg_key, validate_user_id};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match ClientFrame::parse(text) {
        Ok(frame) => client_frame(&frame),
        Err((_id, why)) => assert!(why.starts_with("not a valid frame")),
    }
    if let Ok(frame) = serde_json::from_str::<ServerFrame>(text) {
        server_frame(&frame);
    }
});

fn client_frame(frame: &ClientFrame) {
    // What the server accepted reads back the same once written (the SDK writes frames this way).
    let encoded = serde_json::to_string(frame).expect("a frame encodes");
    assert_eq!(&ClientFrame::parse(&encoded).expect("an encoded frame reads back"), frame, "{encoded}");
    match frame {
        ClientFrame::Login { device, .. } => assert_eq!(limits::check_device_id(device), Ok(())),
        ClientFrame::MarkRead { time: Some(t), .. } => assert_eq!(limits::check_time(*t), Ok(*t)),
        ClientFrame::History { before: Some(key), .. } => {
            if let Some((seq, random, time)) = parse_msg_key(key) {
                assert_eq!(parse_msg_key(&format_msg_key(seq, random, time)), Some((seq, random, time)));
            }
        }
        ClientFrame::Search { keywords, peer, from, types, since, until, limit, .. } => {
            let filters = SearchFilters {
                keywords,
                peer: peer.as_deref(),
                from: from.as_deref(),
                types,
                since: *since,
                until: *until,
                limit: *limit,
            };
            // What the server accepts is a bounded search.
            if let Ok(n) = filters.check() {
                assert!((1..=MAX_SEARCH_PAGE).contains(&n));
                assert!(keywords.len() <= MAX_SEARCH_KEYWORDS);
                assert!(keywords.iter().all(|k| k.len() <= MAX_SEARCH_KEYWORD_BYTES));
            }
        }
        ClientFrame::Send { to, seq, random, body, cloud_custom_data, push, .. } => {
            if validate_user_id(to).is_err() {
                return;
            }
            // As `media::attach_frame` and the send itself check it.
            let Ok(json) = limits::check_message(body, cloud_custom_data, push.as_ref()) else { return };
            assert_eq!(validate_elems(body).as_deref(), Ok(json.as_str()));
            // The message as the recipient receives it, with the largest envelope the server writes.
            let msg = Message {
                from: to.clone(),
                to: to.clone(),
                msg_key: format_msg_key(seq.unwrap_or(u32::MAX), *random, MAX_SAFE_INTEGER),
                seq: seq.unwrap_or(u32::MAX),
                random: *random,
                time: MAX_SAFE_INTEGER,
                conv_seq: u64::MAX,
                body: RawValue::from_string(json).expect("the checked MsgBody is JSON"),
                cloud_custom_data: cloud_custom_data.clone(),
                recalled: true,
                revoker: to.clone(),
                peer_read: true,
                need_read_receipt: true,
                receipt_time: MAX_SAFE_INTEGER,
                version: u32::MAX,
                nick: String::new(),
                face_url: String::new(),
                system: true,
            };
            assert_eq!(&msg.elems().expect("clients read the stored MsgBody"), body);
            let encoded = serde_json::to_string(&msg).expect("a message encodes");
            assert!(encoded.len() <= msg.size_bound(), "{} > {}", encoded.len(), msg.size_bound());
            assert!(encoded.len() <= MAX_MESSAGE_BYTES, "{} > {MAX_MESSAGE_BYTES}", encoded.len());
            entry(&Entry::Msg { seq: u64::MAX, msg });
        }
        _ => {}
    }
}

fn server_frame(frame: &ServerFrame) {
    let _ = serde_json::to_string(frame).expect("a frame encodes");
    match frame {
        ServerFrame::Synced { entries, .. } => entries.iter().for_each(entry),
        ServerFrame::Entry { entry: e } => entry(e),
        ServerFrame::History { messages, .. } => messages.iter().for_each(message),
        ServerFrame::Conversations { items, .. } => items.iter().filter_map(|c| c.last.as_ref()).for_each(message),
        _ => {}
    }
}

/// An entry is never larger, encoded, than its bound.
fn entry(e: &Entry) {
    let encoded = serde_json::to_string(e).expect("an entry encodes");
    assert!(encoded.len() <= e.size_bound(), "{} > {}: {encoded}", encoded.len(), e.size_bound());
    if let Entry::Msg { msg, .. } = e {
        message(msg);
    }
}

fn message(msg: &Message) {
    let encoded = serde_json::to_string(msg).expect("a message encodes");
    assert!(encoded.len() <= msg.size_bound(), "{} > {}: {encoded}", encoded.len(), msg.size_bound());
    let _ = msg.elems();
}
