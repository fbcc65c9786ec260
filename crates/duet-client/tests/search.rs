//! The server-side search of a user's own history, through the SDK against the real server: keywords
//! (Chinese and Latin) across conversations and within one, the sender and type filters, paging with the
//! cursor, and what never matches (a recalled message, one deleted from the user's side).

mod common;

use common::*;
use duet_client::{Client, ClientConfig, Message, MsgElem, Platform, SearchQuery, elems};
use duet_test_support::TestServer;

fn pc(server: &TestServer, user: &str) -> ClientConfig {
    user_config(server, user, Platform::Pc)
}

/// What each message shows: its text, or a custom element's description.
fn texts(ms: &[Message]) -> Vec<String> {
    ms.iter()
        .map(|m| match m.elems.first() {
            Some(MsgElem::Custom(c)) => c.desc.clone(),
            _ => m.text(),
        })
        .collect()
}

async fn search(client: &Client, q: SearchQuery) -> Vec<String> {
    let page = client.search_messages(q).await.expect("a search");
    assert_eq!(page.cursor, None, "one page");
    texts(&page.messages)
}

#[tokio::test]
async fn a_user_searches_its_own_history_across_conversations_and_pages_through_it() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob", "carol"]).await;
    let (alice, _, _) = connect_synced(pc(&server, "alice")).await;
    let (bob, _, _) = connect_synced(pc(&server, "bob")).await;
    let (carol, _, _) = connect_synced(pc(&server, "carol")).await;

    alice.send_text("bob", "明天一起吃午饭吗").await.unwrap();
    bob.send_text("alice", "好的, lunch at noon").await.unwrap();
    let recalled = alice.send_text("carol", "午饭 secret plan").await.unwrap();
    let deleted = carol.send_text("alice", "午饭 in the park").await.unwrap();
    carol.send_text("bob", "午饭 without alice").await.unwrap();
    alice.send_message("carol", vec![elems::custom("{}", "[位置] 午饭餐厅", "")], Default::default()).await.unwrap();

    // Across alice's conversations, newest first; a two-character Chinese keyword inside longer text.
    let lunch = SearchQuery::keyword("午饭");
    assert_eq!(
        search(&alice, lunch.clone()).await,
        ["[位置] 午饭餐厅", "午饭 in the park", "午饭 secret plan", "明天一起吃午饭吗"]
    );
    // A recalled message matches on neither side; one alice deleted from her side still does on carol's.
    alice.recall("carol", &recalled.msg_key).await.unwrap();
    assert_eq!(alice.delete_messages("carol", &[&deleted.msg_key]).await.unwrap(), [deleted.msg_key.as_str()]);
    assert_eq!(search(&alice, lunch.clone()).await, ["[位置] 午饭餐厅", "明天一起吃午饭吗"]);
    assert_eq!(search(&carol, lunch.clone()).await, ["[位置] 午饭餐厅", "午饭 without alice", "午饭 in the park"]);
    // One conversation, one sender, a type; Latin words from their start, any case.
    let with_bob = SearchQuery { peer: Some("bob".into()), ..SearchQuery::keyword("LUNCH") };
    assert_eq!(search(&alice, with_bob).await, ["好的, lunch at noon"]);
    assert_eq!(search(&alice, SearchQuery::keyword("lun")).await, ["好的, lunch at noon"]);
    let from_bob = SearchQuery { from: Some("bob".into()), ..SearchQuery::default() };
    assert_eq!(search(&alice, from_bob).await, ["好的, lunch at noon"]);
    let custom = SearchQuery { types: vec!["TIMCustomElem".into()], ..SearchQuery::default() };
    assert_eq!(search(&alice, custom).await, ["[位置] 午饭餐厅"]);

    // Paging: 45 matches in pages of 20, each message once, newest first.
    for n in 0..45 {
        bob.send_text("alice", &format!("report {n}")).await.unwrap();
    }
    let mut q = SearchQuery { limit: Some(20), ..SearchQuery::keyword("report") };
    let mut seen = Vec::new();
    loop {
        let page = alice.search_messages(q.clone()).await.unwrap();
        seen.extend(texts(&page.messages));
        match page.cursor {
            Some(cursor) => q.cursor = Some(cursor),
            None => break,
        }
    }
    let expected: Vec<String> = (0..45).rev().map(|n| format!("report {n}")).collect();
    assert_eq!(seen, expected);

    // Invalid searches: no condition, a limit out of range, an unknown type, a bad cursor.
    for bad in [
        SearchQuery::default(),
        SearchQuery { limit: Some(0), ..SearchQuery::keyword("x") },
        SearchQuery { limit: Some(101), ..SearchQuery::keyword("x") },
        SearchQuery { types: vec!["TIMTextElement".into()], ..SearchQuery::default() },
        SearchQuery { cursor: Some("nope".into()), ..SearchQuery::keyword("x") },
        SearchQuery::keyword("!!"),
    ] {
        assert_eq!(server_code(alice.search_messages(bad.clone()).await.unwrap_err()), 6017, "{bad:?}");
    }
}
