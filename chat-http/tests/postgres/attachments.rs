//! Attachments across two nodes on one PostgreSQL database: a file uploaded through node
//! A is announced on node B's sockets and downloaded through node B, whole and by range,
//! by whoever may read the chat there; its bytes are in the shared database, not on
//! either node's disk.

use serde_json::Value;

use crate::{two_nodes, ws};

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_on_node_a_is_downloadable_on_node_b() {
    let Some(nodes) = two_nodes("an_upload_on_node_a_is_downloadable_on_node_b", &[]) else {
        return;
    };
    let (a, b) = (&nodes.a.api, &nodes.b.api);
    let officer = b.officer("amy").await;
    let (customer, chat) = a.customer("cust-1").await;
    let (status, body) = b.claim(&officer, "amy", &chat).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let mut officer_ws = ws(b, &officer).await;
    officer_ws.join(&chat, 1).await;

    // 1 MiB and a bit: several of the store's chunks.
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..1_100_000u32).map(|i| (i % 249) as u8));
    let uploaded = a
        .client()
        .post(format!(
            "{}/api/chats/{chat}/attachments?name=contract.pdf&clientMessageId=c1",
            a.base
        ))
        .bearer_auth(&customer)
        .header("content-type", "application/pdf")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status().as_u16(), 201);
    let message: Value = uploaded.json().await.unwrap();
    assert_eq!(message["attachment"]["sha256"], sha256(&bytes));
    let id = message["attachment"]["id"].as_str().unwrap().to_string();

    // Node B's socket hears it, with its attachment.
    let heard = officer_ws
        .next_where("new_message", |f| f["message"]["id"] == message["id"])
        .await;
    assert_eq!(heard["message"]["attachment"], message["attachment"]);

    // Node B serves the bytes: whole to the officer, a range to the customer.
    let whole = b
        .client()
        .get(format!("{}/api/attachments/{id}", b.base))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(whole.headers()["content-type"], "application/pdf");
    assert!(
        whole.bytes().await.unwrap() == bytes,
        "node B served other bytes"
    );
    let part = b
        .client()
        .get(format!("{}/api/attachments/{id}", b.base))
        .bearer_auth(&customer)
        .header("range", "bytes=262140-524300")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status().as_u16(), 206);
    assert!(part.bytes().await.unwrap() == bytes[262_140..=524_300]);

    // A retry through node B with the same key stores nothing twice.
    let retry = b
        .client()
        .post(format!(
            "{}/api/chats/{chat}/attachments?name=contract.pdf&clientMessageId=c1",
            b.base
        ))
        .bearer_auth(&customer)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status().as_u16(), 200);
    let original: Value = retry.json().await.unwrap();
    assert_eq!(original, message);

    // Another customer, on either node, learns nothing of it.
    let (stranger, _) = b.customer("cust-2").await;
    for node in [a, b] {
        let refused = node
            .client()
            .get(format!("{}/api/attachments/{id}", node.base))
            .bearer_auth(&stranger)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 404);
    }
}
