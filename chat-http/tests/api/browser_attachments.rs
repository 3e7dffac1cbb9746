//! Attachments in the pages (issue 19), in real headless Chromium against the real
//! server: files chosen with the Attach button (fantoccini sets its file input, as the
//! browser's picker would) or dropped on the conversation (a drop event carrying a File
//! made in the page), their thumbnails really drawn from bytes fetched with the token,
//! downloads that give back exactly the bytes sent (SHA-256 computed in the page), the
//! officer seeing a customer's file live with its preview in the lists, refusals
//! explained before a byte is sent where the browser can tell and after the server's
//! answer otherwise, and, on an emulated slow or absent network, an upload's progress,
//! its Cancel, and a failed upload sent again with the same clientMessageId. Also what
//! the pages are told of the server's rules, and their policy, over plain HTTP.

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::browser::{
    click, count, driver, eventually, js, login_customer, login_officer, screenshot, send,
    wait_text,
};
use crate::browser_files::{
    RECORD_SAVES, choose, download, pdf, png, sha256, slow_upload, thumbnail, write,
};
use crate::browser_lifecycle::desk;
use crate::helpers::{Options, TestApp, spawn_app};

/// The chat's messages that carry a file, as the server has them (read as `reader`).
async fn stored_files(app: &TestApp, reader: &str, chat: &str) -> Vec<Value> {
    let messages = app
        .messages(Some(reader), chat, "after=0&limit=100")
        .await
        .expect(200);
    messages
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("attachment").is_some_and(|a| !a.is_null()))
        .cloned()
        .collect()
}

/// The composer's status line (refusals, an upload's progress).
async fn composer_says(b: &Client, needle: &str) -> String {
    wait_text(b, ".composer-hint", needle).await
}

/// Counts the page's XMLHttpRequest sends (uploads) from now on.
const COUNT_UPLOADS: &str = r#"
window.__uploads = 0;
const send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function (...args) { window.__uploads += 1; return send.apply(this, args); };
return null;
"#;

async fn uploads(b: &Client) -> u64 {
    js(b, "return window.__uploads;").await.as_u64().unwrap()
}

/// The first chat in the queue, as an officer reads it.
async fn first_queued(app: &TestApp, officer: &str) -> String {
    app.queue(Some(officer)).await.expect(200)[0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_pages_are_told_what_files_the_server_takes_and_allow_blob_images_only() {
    let mut options = Options::open();
    options.attachments.max_bytes = 123_456;
    options.attachments.types =
        chatcore::FileTypes::parse(["image/png", "application/pdf"]).expect("allowed types");
    let app = spawn_app(options).await;
    for page in ["/customer", "/officer"] {
        let resp = app.client.get(app.url(page)).send().await.unwrap();
        let csp = resp
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        // Thumbnails are object URLs; nothing else may use blob: (no script, frame or
        // connection), and nothing wider is allowed for images.
        assert!(csp.contains("img-src 'self' blob:;"), "{page}: {csp}");
        assert_eq!(csp.matches("blob:").count(), 1, "{page}: {csp}");
        assert!(
            !csp.contains("data:") && !csp.contains('*') && !csp.contains("https:"),
            "{page}: {csp}"
        );
        let html = resp.text().await.unwrap();
        let start = r#"<script type="application/json" id="attachments-data">"#;
        let data = html
            .split_once(start)
            .and_then(|(_, rest)| rest.split_once("</script>"))
            .map(|(data, _)| data)
            .unwrap_or_else(|| panic!("{page} has no attachments data block"));
        let data: Value = serde_json::from_str(data).expect("JSON");
        assert_eq!(
            data,
            json!({ "enabled": true, "maxBytes": 123_456, "types": ["image/png", "application/pdf"] }),
            "{page}"
        );
    }
    let admin = app.client.get(app.url("/admin")).send().await.unwrap();
    assert!(!admin.text().await.unwrap().contains("attachments-data"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_go_both_ways_with_thumbnails_previews_and_exact_downloads() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let officer = app.login_officer("alice").await;
    let dir = tempfile::tempdir().unwrap();
    let card = png(360, 228);
    let payslip = pdf(50_000);
    let offer = pdf(120_000);
    let card_path = write(dir.path(), "id-card.png", &card);
    let payslip_path = write(dir.path(), "payslip.pdf", &payslip);
    let offer_path = write(dir.path(), "offer.pdf", &offer);

    let alice = driver.browser("alice").await;
    let customer = driver.browser("customer").await;
    login_officer(&alice, &app, "alice").await;
    login_customer(&customer, &app, "cust-1").await;
    send(&customer, "Hello, here are the documents you asked for.").await;
    wait_text(&alice, "#queue", "cust-1").await;
    let chat = first_queued(&app, &officer).await;
    click(&alice, "#queue li[data-chat-id] button.claim").await;
    wait_text(&alice, "#chat-title", "Chat with cust-1").await;
    for b in [&alice, &customer] {
        js(b, RECORD_SAVES).await;
    }

    // The Attach button opens the file picker, by a click and by the keyboard.
    js(
        &customer,
        "window.__picker = 0;
         document.getElementById('attach-input').addEventListener('click', (e) => { e.preventDefault(); window.__picker += 1; });
         return null;",
    )
    .await;
    click(&customer, "#attach").await;
    customer
        .find(Locator::Css("#attach"))
        .await
        .expect("the attach button")
        .send_keys("\u{E007}")
        .await
        .expect("press Enter on it");
    assert_eq!(js(&customer, "return window.__picker;").await, json!(2));
    let name = js(
        &customer,
        "const b = document.getElementById('attach');
         return [b.tagName, b.querySelector('.visually-hidden').textContent, b.querySelector('.attach-label').textContent, b.disabled];",
    )
    .await;
    assert_eq!(name, json!(["BUTTON", "Attach a file", "Attach", false]));

    // Two files chosen at once go in order: a picture and a PDF.
    choose(&customer, &[&card_path, &payslip_path]).await;
    let drawn = thumbnail(&customer, "id-card.png").await;
    assert_eq!(
        drawn,
        json!({ "width": 360, "height": 228, "scheme": "blob" })
    );
    wait_text(
        &customer,
        ".messages li.message[data-seq] .attachment.document",
        "payslip.pdf",
    )
    .await;
    let chip = js(
        &customer,
        "const b = [...document.querySelectorAll('.messages li.message[data-seq] button.attachment.document')].at(-1);
         return [b.querySelector('.file-name').textContent, b.querySelector('.file-size').textContent, b.querySelector('svg') !== null];",
    )
    .await;
    assert_eq!(chip, json!(["payslip.pdf", "49 KB", true]));

    // The officer sees both live, the picture drawn, and the list's preview of the
    // newest reads as the server's.
    let drawn = thumbnail(&alice, "id-card.png").await;
    assert_eq!(drawn["width"], 360);
    wait_text(&alice, ".messages", "payslip.pdf").await;
    let preview = eventually("the preview of the newest file", || async {
        let v = js(
            &alice,
            "return document.querySelector('#my-chats li[data-chat-id] .preview')?.textContent ?? null;",
        )
        .await;
        v.as_str().filter(|p| p.contains("payslip")).map(String::from)
    })
    .await;
    assert_eq!(preview, "📎 payslip.pdf");
    let listed = app
        .request(
            reqwest::Method::GET,
            "/api/officers/alice/chats",
            Some(&officer),
            None,
        )
        .await
        .expect(200);
    assert_eq!(listed[0]["lastMessage"]["preview"], json!(preview));

    screenshot(&customer, "customer-attachments").await;
    screenshot(&alice, "officer-console-attachments").await;
    customer.set_window_size(390, 844).await.expect("resize");
    thumbnail(&customer, "id-card.png").await;
    screenshot(&customer, "customer-attachments-phone").await;
    customer.set_window_size(1280, 800).await.expect("resize");

    // Downloads give back exactly the bytes sent, under their names and types.
    let saved = download(&customer, "id-card.png").await;
    assert_eq!(
        saved,
        json!({ "name": "id-card.png", "type": "image/png", "size": card.len(), "sha256": sha256(&card) })
    );
    let saved = download(&customer, "payslip.pdf").await;
    assert_eq!(saved["sha256"], json!(sha256(&payslip)));
    assert_eq!(saved["type"], json!("application/pdf"));
    let saved = download(&alice, "payslip.pdf").await;
    assert_eq!(saved["sha256"], json!(sha256(&payslip)));

    // The officer answers with a file; the customer sees it live and saves it.
    choose(&alice, &[&offer_path]).await;
    wait_text(&customer, ".messages", "offer.pdf").await;
    let saved = download(&customer, "offer.pdf").await;
    assert_eq!(saved["sha256"], json!(sha256(&offer)));
    send(&customer, "Thank you, I will read the offer tonight.").await;
    wait_text(&alice, ".messages", "read the offer tonight").await;

    // What the server stored: three files, in order, from whom they came.
    let files = stored_files(&app, &officer, &chat).await;
    let seen: Vec<(String, String, String)> = files
        .iter()
        .map(|m| {
            (
                m["senderType"].as_str().unwrap().to_string(),
                m["attachment"]["name"].as_str().unwrap().to_string(),
                m["attachment"]["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("customer", "id-card.png", sha256(&card)),
            ("customer", "payslip.pdf", sha256(&payslip)),
            ("officer", "offer.pdf", sha256(&offer)),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c))
    );

    // A thumbnail's object URL is revoked once it is no longer shown: Alice opens
    // another chat.
    let old = js(
        &alice,
        "return document.querySelector('.messages .attachment.picture img').src;",
    )
    .await;
    let (_, other) = app.new_customer("cust-2").await;
    app.claim(Some(&officer), "alice", &other).await.expect(200);
    click(
        &alice,
        &format!("#my-chats li[data-chat-id=\"{other}\"] button.open"),
    )
    .await;
    wait_text(&alice, "#chat-title", "Chat with cust-2").await;
    let still = alice
        .execute_async(
            "const [src, done] = arguments; const img = new Image();
             img.onload = () => done('still there'); img.onerror = () => done('revoked'); img.src = src;",
            vec![old],
        )
        .await
        .expect("load the old address");
    assert_eq!(still, json!("revoked"));

    for b in [alice, customer] {
        b.close().await.expect("close browser");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_explained_before_sending_where_the_browser_can_tell_and_after_otherwise() {
    let Some(driver) = driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::open();
    options.db = Some(dir.path().join("chat.db"));
    options.attachments.max_bytes = 64 * 1024;
    let app = spawn_app(options.clone()).await;
    let officer = app.new_officer("alice").await;
    let customer = driver.browser("customer").await;
    login_customer(&customer, &app, "cust-1").await;
    send(&customer, "Hello.").await;
    wait_text(&customer, ".messages li.message[data-seq]", "Hello.").await;
    let chat = first_queued(&app, &officer).await;
    js(&customer, COUNT_UPLOADS).await;

    // What the browser can tell: a type the server does not take (the browser names it
    // from the extension), an empty file, a file over the limit the page was told.
    let zip = write(dir.path(), "notes.zip", b"PK\x03\x04 not really a zip");
    let empty = write(dir.path(), "empty.png", b"");
    let large = write(dir.path(), "scan.pdf", &pdf(100 * 1024));
    choose(&customer, &[&zip, &empty, &large]).await;
    let said = composer_says(&customer, "notes.zip").await;
    assert!(
        said.contains(
            "“notes.zip” cannot be sent: you can send PNG images, JPEG images, WebP images, PDF documents or plain text files."
        ) && said.contains("“empty.png” is empty: there is nothing to send.")
            && said.contains("“scan.pdf” is too large to send (100 KB): files can be up to 64 KB."),
        "{said}"
    );
    screenshot(&customer, "customer-attachment-refused").await;
    // Nothing was sent, nor shown as being sent.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(uploads(&customer).await, 0);
    assert_eq!(count(&customer, ".messages li.pending").await, 0);

    // What only the server can tell: a text file with a control character in it.
    let text = write(dir.path(), "notes.txt", b"line one\n\x01line two\n");
    choose(&customer, &[&text]).await;
    let failed = wait_text(&customer, ".messages li.pending.failed", "Not sent").await;
    assert!(
        failed.contains("notes.txt") && failed.contains("The server does not take this file"),
        "{failed}"
    );
    composer_says(&customer, "“notes.txt” was not sent.").await;
    click(&customer, ".messages li.pending.failed button.discard").await;
    eventually("the refused file to be discarded", || async {
        (count(&customer, ".messages li.pending").await == 0).then_some(())
    })
    .await;

    // The operator lowers the limit while the page is open: the server's 413 is said in
    // words, with the new limit; Retry asks again (with the same key), Discard drops it.
    let addr = app.addr;
    app.stop().await;
    wait_text(&customer, ".connection", "Reconnecting").await;
    options.bind = Some(addr);
    options.attachments.max_bytes = 16 * 1024;
    let app = spawn_app(options).await;
    wait_text(&customer, ".connection", "Live").await;
    let statement = write(dir.path(), "statement.pdf", &pdf(24 * 1024));
    let before = uploads(&customer).await;
    choose(&customer, &[&statement]).await;
    let failed = wait_text(&customer, ".messages li.pending.failed", "too large").await;
    assert!(
        failed.contains("The file is too large for the server. Files can be up to 16 KB."),
        "{failed}"
    );
    let key = js(
        &customer,
        "return document.querySelector('.messages li.pending.failed').dataset.key;",
    )
    .await;
    click(&customer, ".messages li.pending.failed button.retry").await;
    eventually("the retry to be refused again", || async {
        (uploads(&customer).await == before + 2
            && js(
                &customer,
                "return document.querySelector('.messages li.pending.failed')?.dataset.key ?? null;",
            )
            .await
                == key)
            .then_some(())
    })
    .await;
    click(&customer, ".messages li.pending.failed button.discard").await;
    eventually("the refused file to be discarded", || async {
        (count(&customer, ".messages li.pending").await == 0).then_some(())
    })
    .await;
    assert!(stored_files(&app, &officer, &chat).await.is_empty());
    customer.close().await.expect("close browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_shows_progress_and_cancels_and_a_failed_one_goes_again_with_its_key() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::open()).await;
    let officer = app.new_officer("alice").await;
    let dir = tempfile::tempdir().unwrap();
    let customer = driver.browser("customer").await;
    login_customer(&customer, &app, "cust-1").await;
    send(&customer, "Sending my statement now.").await;
    wait_text(&customer, ".messages li.message[data-seq]", "statement now").await;
    let chat = first_queued(&app, &officer).await;

    // A slow link: the upload's progress is drawn and said, and Cancel stops it.
    slow_upload(&driver, &customer).await;
    let big = write(dir.path(), "statement.pdf", &pdf(512 * 1024));
    choose(&customer, &[&big]).await;
    eventually("the upload's progress to move", || async {
        let v = js(
            &customer,
            "const p = document.querySelector('.messages li.pending progress');
             return p ? [p.value, p.max, p.getAttribute('aria-label')] : null;",
        )
        .await;
        (v[0].as_f64().unwrap_or(0.0) > 0.0 && v[0].as_f64() < v[1].as_f64()).then_some(v)
    })
    .await;
    composer_says(&customer, "Sending “statement.pdf”: 25%.").await;
    let live = js(
        &customer,
        "const h = document.querySelector('.composer-hint'); return [h.getAttribute('role'), h.getAttribute('aria-live')];",
    )
    .await;
    assert_eq!(live, json!(["status", "polite"]));
    click(&customer, ".messages li.pending button.cancel-upload").await;
    eventually("the cancelled upload to leave the timeline", || async {
        (count(&customer, ".messages li.pending").await == 0).then_some(())
    })
    .await;
    composer_says(&customer, "The upload of “statement.pdf” was cancelled.").await;
    let focus = js(&customer, "return document.activeElement.className;").await;
    assert_eq!(
        focus,
        json!("messages"),
        "the keyboard stays in the conversation"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(stored_files(&app, &officer, &chat).await.is_empty());

    // Offline: the upload waits, said so, and goes when the network is back, with the
    // clientMessageId it was given when chosen (stored once).
    driver
        .network(
            &customer,
            json!({ "offline": true, "latency": 0, "download_throughput": -1, "upload_throughput": -1 }),
        )
        .await;
    let receipt = png(64, 40);
    let receipt_path = write(dir.path(), "receipt.png", &receipt);
    choose(&customer, &[&receipt_path]).await;
    wait_text(
        &customer,
        ".messages li.pending.queued",
        "It will be sent when the connection is back.",
    )
    .await;
    let key = js(
        &customer,
        "return document.querySelector('.messages li.pending.queued').dataset.key;",
    )
    .await;
    driver
        .network(
            &customer,
            json!({ "offline": false, "latency": 0, "download_throughput": -1, "upload_throughput": -1 }),
        )
        .await;
    thumbnail(&customer, "receipt.png").await;
    let files = stored_files(&app, &officer, &chat).await;
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["clientMessageId"], key);
    assert_eq!(files[0]["attachment"]["sha256"], json!(sha256(&receipt)));
    customer.close().await.expect("close browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_dropped_on_the_conversation_is_sent_and_the_zone_shows_it() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::open()).await;
    let officer = app.new_officer("alice").await;
    let customer = driver.browser("customer").await;
    login_customer(&customer, &app, "cust-1").await;
    send(&customer, "Here it comes.").await;
    wait_text(&customer, ".messages li.message[data-seq]", "Here it comes").await;
    let chat = first_queued(&app, &officer).await;
    js(&customer, COUNT_UPLOADS).await;

    // A file dragged over the conversation: the zone shows where it goes.
    let over = js(
        &customer,
        "const zone = document.querySelector('section.chat');
         window.__drag = new DataTransfer();
         window.__drag.items.add(new File(['Dropped notes, line one\\n'], 'dropped.txt', { type: 'text/plain' }));
         zone.querySelector('.messages').dispatchEvent(new DragEvent('dragenter', { bubbles: true, cancelable: true, dataTransfer: window.__drag }));
         const hint = zone.querySelector('.drop-hint');
         return [zone.classList.contains('dropping'), getComputedStyle(hint).display, hint.textContent];",
    )
    .await;
    assert_eq!(over, json!([true, "flex", "Drop a file to send it"]));
    screenshot(&customer, "customer-attachment-drop").await;
    let left = js(
        &customer,
        "const zone = document.querySelector('section.chat');
         zone.dispatchEvent(new DragEvent('dragleave', { bubbles: true, dataTransfer: window.__drag }));
         return zone.classList.contains('dropping');",
    )
    .await;
    assert_eq!(left, json!(false));

    // Dropped: sent and shown like a file chosen with the button.
    js(
        &customer,
        "document.querySelector('.messages').dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: window.__drag }));
         return null;",
    )
    .await;
    wait_text(
        &customer,
        ".messages li.message[data-seq] .attachment",
        "dropped.txt",
    )
    .await;
    let files = stored_files(&app, &officer, &chat).await;
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0]["attachment"]["sha256"],
        json!(sha256(b"Dropped notes, line one\n"))
    );
    assert_eq!(files[0]["attachment"]["contentType"], json!("text/plain"));

    // A type the browser names and the server does not take, dropped: explained,
    // nothing sent.
    let dropped = |name: &str, content: &str, kind: &str| {
        format!(
            "const t = new DataTransfer();
             t.items.add(new File([{content:?}], {name:?}, {{ type: {kind:?} }}));
             document.querySelector('.messages').dispatchEvent(new DragEvent('drop', {{ bubbles: true, cancelable: true, dataTransfer: t }}));
             return null;"
        )
    };
    js(
        &customer,
        &dropped("setup.exe", "MZ", "application/x-msdownload"),
    )
    .await;
    composer_says(&customer, "“setup.exe” cannot be sent").await;
    assert_eq!(uploads(&customer).await, 1, "only the text file went");
    // Text is the server's to judge (it reads the bytes): HTML is refused after.
    js(
        &customer,
        &dropped("page.html", "<html></html>", "text/html"),
    )
    .await;
    let refused = wait_text(&customer, ".messages li.pending.failed", "page.html").await;
    assert!(
        refused.contains("The server does not take this file"),
        "{refused}"
    );
    assert_eq!(uploads(&customer).await, 2);
    customer.close().await.expect("close browser");
}
