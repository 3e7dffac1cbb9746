//! The authorization matrix of the contract, over HTTP, in both modes.

use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Options, spawn_app};

#[tokio::test]
async fn authorization_matrix() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let alice = app.new_officer("alice").await;
        let bob = app.new_officer("bob").await;
        let (c1, chat1) = app.new_customer("c1").await;
        let (c2, chat2) = app.new_customer("c2").await;
        let say = json!({ "content": "hi" });

        // No token: 401 everywhere a token is needed.
        app.queue(None).await.expect_error(401, "unauthorized");
        app.officer_chats(None, "alice")
            .await
            .expect_error(401, "unauthorized");
        app.claim(None, "alice", &chat1)
            .await
            .expect_error(401, "unauthorized");
        app.chat(None, &chat1)
            .await
            .expect_error(401, "unauthorized");
        app.messages(None, &chat1, "")
            .await
            .expect_error(401, "unauthorized");
        app.send_message(None, &chat1, say.clone())
            .await
            .expect_error(401, "unauthorized");
        app.chat(Some("forged-token"), &chat1)
            .await
            .expect_error(401, "unauthorized");

        // Wrong role: 403.
        app.queue(Some(&c1)).await.expect_error(403, "forbidden");
        app.officer_chats(Some(&c1), "alice")
            .await
            .expect_error(403, "forbidden");
        app.claim(Some(&c1), "alice", &chat1)
            .await
            .expect_error(403, "forbidden");
        // An officer acts only for themselves.
        app.officer_chats(Some(&bob), "alice")
            .await
            .expect_error(403, "forbidden");
        app.claim(Some(&bob), "alice", &chat1)
            .await
            .expect_error(403, "forbidden");

        // Another customer's chat: 403.
        app.chat(Some(&c2), &chat1)
            .await
            .expect_error(403, "forbidden");
        app.messages(Some(&c2), &chat1, "")
            .await
            .expect_error(403, "forbidden");
        app.send_message(Some(&c2), &chat1, say.clone())
            .await
            .expect_error(403, "forbidden");

        // Any officer may read a pending chat, but not write to it before claiming.
        app.chat(Some(&bob), &chat1).await.expect(200);
        app.messages(Some(&bob), &chat1, "").await.expect(200);
        app.send_message(Some(&bob), &chat1, say.clone())
            .await
            .expect_error(403, "forbidden");

        // Once alice owns it, bob may neither read nor write it.
        app.claim(Some(&alice), "alice", &chat1).await.expect(200);
        app.chat(Some(&bob), &chat1)
            .await
            .expect_error(403, "forbidden");
        app.messages(Some(&bob), &chat1, "")
            .await
            .expect_error(403, "forbidden");
        app.send_message(Some(&bob), &chat1, say.clone())
            .await
            .expect_error(403, "forbidden");
        app.chat(Some(&alice), &chat1).await.expect(200);
        app.send_message(Some(&alice), &chat1, say.clone())
            .await
            .expect(201);
        app.send_message(Some(&c1), &chat1, say.clone())
            .await
            .expect(201);

        // The sender comes from the token: spoofed senderType/senderId are refused.
        for spoof in [
            json!({ "content": "x", "senderType": "officer" }),
            json!({ "content": "x", "senderId": "c2" }),
            json!({ "content": "x", "senderType": "customer", "senderId": "alice" }),
        ] {
            app.send_message(Some(&c1), &chat1, spoof)
                .await
                .expect_error(403, "forbidden");
        }
        app.send_message(
            Some(&alice),
            &chat1,
            json!({ "content": "x", "senderType": "customer" }),
        )
        .await
        .expect_error(403, "forbidden");
        app.send_message(
            Some(&c1),
            &chat1,
            json!({ "content": "x", "senderType": "customer", "senderId": "c1" }),
        )
        .await
        .expect(201);

        if app.secured {
            // The admin reads everything but neither sends nor claims.
            app.chat(Some(ADMIN_TOKEN), &chat1).await.expect(200);
            app.messages(Some(ADMIN_TOKEN), &chat2, "")
                .await
                .expect(200);
            app.send_message(Some(ADMIN_TOKEN), &chat2, say.clone())
                .await
                .expect_error(403, "forbidden");
            app.claim(Some(ADMIN_TOKEN), "alice", &chat2)
                .await
                .expect_error(403, "forbidden");
        }
        // c2's chat is still pending and theirs.
        app.send_message(Some(&c2), &chat2, say).await.expect(201);
        app.stop().await;
    }
}
