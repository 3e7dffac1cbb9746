//! Typing and read marks across two nodes: what one side tells on node A reaches the
//! other side's socket on node B, and a mark stored through one node reads back the same
//! through the other.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::{frames_until_quiet, two_nodes, ws};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_read_marks_cross_between_nodes() {
    let Some(nodes) = two_nodes("typing_and_read_marks_cross_between_nodes", &[]) else {
        return;
    };
    let (a, b) = (&nodes.a.api, &nodes.b.api);

    // The customer is on node A, the officer (who claims the chat) on node B.
    let officer = b.officer("amy").await;
    let (customer, chat) = a.customer("cust-1").await;
    let (status, body) = b.claim(&officer, "amy", &chat).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let mut officer_ws = ws(b, &officer).await;
    officer_ws.join(&chat, 0).await;
    let mut customer_ws = ws(a, &customer).await;
    customer_ws.join(&chat, 0).await;
    // Both replay the claim's entry, seq 1.
    for socket in [&mut officer_ws, &mut customer_ws] {
        assert_eq!(socket.next_of("new_message").await["message"]["seq"], 1);
    }

    // Typing on A is heard on B, and the other way round; nobody hears their own.
    customer_ws
        .send(json!({ "type": "typing", "chatId": chat }))
        .await;
    let typing = officer_ws.next_of("typing").await;
    assert_eq!(
        (
            &typing["chatId"],
            &typing["senderType"],
            &typing["senderId"]
        ),
        (&json!(chat), &json!("customer"), &json!("cust-1")),
        "{typing}"
    );
    assert!(
        typing["expiresInMs"].as_u64().is_some_and(|ms| ms > 0),
        "{typing}"
    );
    officer_ws
        .send(json!({ "type": "typing", "chatId": chat }))
        .await;
    let typing = customer_ws.next_of("typing").await;
    assert_eq!(
        (&typing["senderType"], &typing["senderId"]),
        (&json!("officer"), &json!("amy")),
        "{typing}"
    );

    // The customer writes on A; the officer marks it read on B (REST): the customer's
    // socket on A hears the mark, and both nodes read it back on the chat.
    let (status, sent) = a
        .send(&customer, &chat, "my pay slip is ready")
        .await
        .unwrap();
    assert_eq!(status, 201, "{sent}");
    let seq = sent["seq"].as_u64().expect("seq");
    assert_eq!(
        officer_ws.next_of("new_message").await["message"]["seq"],
        seq
    );
    let mark = b
        .expect(
            Method::POST,
            &format!("/api/chats/{chat}/read"),
            Some(&officer),
            Some(json!({ "seq": seq })),
            200,
        )
        .await;
    assert_eq!(
        (&mark["readerType"], &mark["readerId"], &mark["seq"]),
        (&json!("officer"), &json!("amy"), &json!(seq)),
        "{mark}"
    );
    let read = customer_ws.next_of("read").await;
    assert_eq!(
        (
            &read["chatId"],
            &read["readerType"],
            &read["readerId"],
            &read["seq"]
        ),
        (&json!(chat), &json!("officer"), &json!("amy"), &json!(seq)),
        "{read}"
    );
    for (node, token) in [(a, &customer), (b, &officer)] {
        let got = node
            .expect(
                Method::GET,
                &format!("/api/chats/{chat}"),
                Some(token),
                None,
                200,
            )
            .await;
        assert_eq!(got["officerLastReadSeq"], seq, "{got}");
    }

    // The customer marks the officer's answer read over the WebSocket on A: heard on B.
    let (status, answer) = b.send(&officer, &chat, "thanks, got it").await.unwrap();
    assert_eq!(status, 201, "{answer}");
    let answer_seq = answer["seq"].as_u64().expect("seq");
    customer_ws
        .next_where("new_message", |m| m["message"]["seq"] == answer_seq)
        .await;
    customer_ws
        .send(json!({ "type": "read", "chatId": chat, "seq": answer_seq }))
        .await;
    let read = officer_ws.next_of("read").await;
    assert_eq!(
        (&read["readerType"], &read["readerId"], &read["seq"]),
        (&json!("customer"), &json!("cust-1"), &json!(answer_seq)),
        "{read}"
    );

    // A mark only moves forward, whichever node it goes through: a lower seq on A is a
    // no-op (the mark stays, no event on B), past lastSeq is 422 on either node.
    let mark = a
        .expect(
            Method::POST,
            &format!("/api/chats/{chat}/read"),
            Some(&customer),
            Some(json!({ "seq": 1 })),
            200,
        )
        .await;
    assert_eq!(mark["seq"], answer_seq, "{mark}");
    for (node, token) in [(a, &customer), (b, &officer)] {
        let refused = node
            .expect(
                Method::POST,
                &format!("/api/chats/{chat}/read"),
                Some(token),
                Some(json!({ "seq": answer_seq + 5 })),
                422,
            )
            .await;
        assert_eq!(refused["error"]["code"], "invalid_field", "{refused}");
    }
    let after = frames_until_quiet(&mut officer_ws, Duration::from_millis(500)).await;
    assert!(
        after.iter().all(|f| f["type"] != "read"),
        "a mark that did not move is not announced: {after:?}"
    );
    let got = b
        .expect(
            Method::GET,
            &format!("/api/chats/{chat}"),
            Some(&officer),
            None,
            200,
        )
        .await;
    assert_eq!(got["customerLastReadSeq"], answer_seq, "{got}");
}
