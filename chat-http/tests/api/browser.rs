//! The customer page and the officer console in a real headless Chromium (Debian's
//! chromium + chromedriver, driven over WebDriver with fantoccini), against the real
//! server. Each person gets a browser of their own (own profile, own sessionStorage).
//!
//! When the browser is missing these tests fail under CI (`CI` set) and are skipped with
//! a printed reason elsewhere. Screenshots go to `target/browser-screenshots/`; with
//! `UPDATE_SCREENSHOTS=1` they are also written to `docs/screenshots/` for the README.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::{Options, PASSWORD, TestApp, spawn_app};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A running chromedriver; its browsers are closed by the tests, the driver on drop.
pub(crate) struct Driver {
    process: Child,
    url: String,
    profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Starts chromedriver, or says why not: a failure under CI, a skip elsewhere.
pub(crate) fn driver() -> Option<Driver> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        let why =
            format!("browser tests need {missing:?} (apt-get install chromium chromium-driver)");
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("SKIPPED: {why}");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let process = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Driver {
        process,
        url: format!("http://127.0.0.1:{port}"),
        profiles: tempfile::tempdir().expect("profile dir"),
    })
}

impl Driver {
    /// A new browser with a fresh profile, sized like a laptop screen.
    pub(crate) async fn browser(&self, name: &str) -> Client {
        self.start(name, None).await
    }

    /// A new browser with a fresh profile emulating a phone: a touch screen whose
    /// viewport is `width` x `height` CSS pixels.
    pub(crate) async fn phone(&self, name: &str, width: u32, height: u32) -> Client {
        let screen = json!({
            "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "mobile": true, "touch": true },
        });
        self.start(name, Some(screen)).await
    }

    /// Emulates a network in `b`, as chromedriver's `network_conditions` takes it:
    /// `offline`, `latency` (ms), `download_throughput` and `upload_throughput` (bytes a
    /// second; -1 for no limit). Chromium applies it below the page, so an upload's
    /// progress events follow it.
    pub(crate) async fn network(&self, b: &Client, conditions: Value) {
        let session = b
            .session_id()
            .await
            .expect("read the session id")
            .expect("a session");
        let resp = crate::helpers::http_client()
            .post(format!(
                "{}/session/{session}/chromium/network_conditions",
                self.url
            ))
            .json(&json!({ "network_conditions": conditions }))
            .send()
            .await
            .expect("ask chromedriver");
        let status = resp.status();
        assert!(
            status.is_success(),
            "network conditions refused: {status} {}",
            resp.text().await.unwrap_or_default()
        );
    }

    async fn start(&self, name: &str, mobile_emulation: Option<Value>) -> Client {
        let profile = self.profiles.path().join(name);
        let mut caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        if let Some(emulation) = mobile_emulation {
            caps["goog:chromeOptions"]["mobileEmulation"] = emulation;
        }
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("start a browser session")
    }
}

/// Polls `check` until it returns `Some`, or fails the test saying what was awaited.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn text_of(b: &Client, css: &str) -> Option<String> {
    b.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

pub(crate) async fn wait_text(b: &Client, css: &str, needle: &str) -> String {
    eventually(&format!("{css} to contain {needle:?}"), || async {
        text_of(b, css).await.filter(|t| t.contains(needle))
    })
    .await
}

pub(crate) async fn count(b: &Client, css: &str) -> usize {
    b.find_all(Locator::Css(css)).await.map_or(0, |v| v.len())
}

/// The seq numbers shown in the page's timeline (messages and system entries), in
/// display order.
pub(crate) async fn shown_seqs(b: &Client) -> Vec<u64> {
    let v = b
        .execute(
            "return [...document.querySelectorAll('.messages li[data-seq]')].map(li => Number(li.dataset.seq));",
            vec![],
        )
        .await
        .expect("read seqs");
    serde_json::from_value(v).expect("numbers")
}

pub(crate) async fn fill(b: &Client, css: &str, text: &str) {
    let field = b.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

pub(crate) async fn login_officer(b: &Client, app: &TestApp, id: &str) {
    b.goto(&app.url("/officer")).await.expect("open console");
    fill(b, "#officer-id", id).await;
    fill(b, "#password", PASSWORD).await;
    b.find(Locator::Css("#login-form button[type=submit]"))
        .await
        .expect("sign in button")
        .click()
        .await
        .expect("sign in");
    wait_text(b, ".connection", "Live").await;
}

pub(crate) async fn login_customer(b: &Client, app: &TestApp, id: &str) {
    b.goto(&app.url("/customer")).await.expect("open page");
    fill(b, "#customer-id", id).await;
    b.find(Locator::Css("#login-form button[type=submit]"))
        .await
        .expect("start button")
        .click()
        .await
        .expect("start");
    wait_text(b, ".connection", "Live").await;
}

pub(crate) async fn send(b: &Client, text: &str) {
    fill(b, "#message-input", text).await;
    b.find(Locator::Css(".composer button[type=submit]"))
        .await
        .expect("send button")
        .click()
        .await
        .expect("send");
}

/// Clicks the element at `css`; found again when the page re-rendered it between the
/// find and the click (a list redrawn by a live event leaves a stale element), until
/// [`eventually`]'s patience runs out.
pub(crate) async fn click(b: &Client, css: &str) {
    eventually(&format!("a click on {css}"), || async {
        b.find(Locator::Css(css)).await.ok()?.click().await.ok()
    })
    .await;
}

/// Runs `script` in the page and returns what it returns.
pub(crate) async fn js(b: &Client, script: &str) -> Value {
    b.execute(script, vec![]).await.expect(script)
}

pub(crate) async fn screenshot(b: &Client, name: &str) {
    let png = b.screenshot().await.expect("screenshot");
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
    std::fs::create_dir_all(&target).expect("screenshot dir");
    std::fs::write(target.join(format!("{name}.png")), &png).expect("write screenshot");
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&docs).expect("docs dir");
        std::fs::write(docs.join(format!("{name}.png")), &png).expect("write screenshot");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_test_in_real_browsers() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::open()).await;
    app.create_officer(
        None,
        json!({ "id": "alice", "password": PASSWORD, "displayName": "Alice" }),
    )
    .await
    .expect(201);
    app.create_officer(None, json!({ "id": "bob", "password": PASSWORD }))
        .await
        .expect(201);
    let alice = driver.browser("alice").await;
    let bob = driver.browser("bob").await;
    let customer = driver.browser("customer").await;
    login_officer(&alice, &app, "alice").await;
    login_officer(&bob, &app, "bob").await;

    // The customer starts a chat; both officers see it arrive without reloading.
    login_customer(&customer, &app, "cust-1").await;
    wait_text(&customer, "#chat-status", "Waiting for an officer").await;
    for officer in [&alice, &bob] {
        wait_text(officer, "#queue", "cust-1").await;
    }
    send(&customer, "Hello, I have a question about my loan.").await;
    screenshot(&alice, "officer-console-queue").await;

    // Alice claims it; it leaves Bob's queue live, and Alice has it open.
    alice
        .find(Locator::Css("#queue li[data-chat-id] button.claim"))
        .await
        .expect("claim button")
        .click()
        .await
        .expect("claim");
    wait_text(&alice, "#chat-title", "Chat with cust-1").await;
    wait_text(&alice, "#my-chats", "cust-1").await;
    eventually("the chat to leave Bob's queue", || async {
        (count(&bob, "#queue li[data-chat-id]").await == 0).then_some(())
    })
    .await;
    wait_text(&alice, ".messages", "question about my loan").await;

    // Messages go both ways live; markup is shown as text, never run.
    send(&alice, "Hi, I am Alice. How can I help?").await;
    wait_text(&customer, ".messages", "Hi, I am Alice").await;
    wait_text(&customer, "#chat-status", "Alice has joined the chat").await;
    let hostile = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">";
    send(&customer, hostile).await;
    let shown = wait_text(&alice, ".messages", "<script>").await;
    assert!(shown.contains("onerror"), "{shown}");
    let injected = alice
        .execute(
            "return [window.pwned ?? null, document.querySelectorAll('.messages script, .messages img').length];",
            vec![],
        )
        .await
        .expect("inspect page");
    assert_eq!(
        injected,
        json!([null, 0]),
        "message content was parsed as HTML"
    );
    // The customer's question, the claim's system entry, Alice's answer, the hostile one.
    assert_eq!(shown_seqs(&alice).await, vec![1, 2, 3, 4]);
    assert_eq!(shown_seqs(&customer).await, vec![1, 2, 3, 4]);
    screenshot(&alice, "officer-console-chat").await;
    screenshot(&customer, "customer-chat").await;

    // The customer page at a phone's width.
    customer.set_window_size(390, 844).await.expect("resize");
    screenshot(&customer, "customer-chat-phone").await;

    for b in [alice, bob, customer] {
        b.close().await.expect("close browser");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_reconnects_and_shows_what_was_missed_exactly_once() {
    let Some(driver) = driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::open();
    options.db = Some(dir.path().join("chat.db"));
    let app = spawn_app(options.clone()).await;
    let officer = app.new_officer("alice").await;
    let customer = driver.browser("customer").await;
    login_customer(&customer, &app, "cust-1").await;
    let chat = app.queue(Some(&officer)).await.expect(200)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.claim(Some(&officer), "alice", &chat).await.expect(200);
    app.say(&officer, &chat, "before the drop").await;
    wait_text(&customer, ".messages", "before the drop").await;

    // The server goes away (sockets closed) and comes back on the same address and
    // database; messages are sent before the page has reconnected.
    let addr = app.addr;
    app.stop().await;
    wait_text(&customer, ".connection", "Reconnecting").await;
    options.bind = Some(addr);
    let app = spawn_app(options).await;
    for i in 1..=3 {
        app.say(&officer, &chat, &format!("while away {i}")).await;
    }
    wait_text(&customer, ".connection", "Live").await;
    wait_text(&customer, ".messages", "while away 3").await;
    app.say(&officer, &chat, "after the return").await;
    wait_text(&customer, ".messages", "after the return").await;
    assert_eq!(
        shown_seqs(&customer).await,
        vec![1, 2, 3, 4, 5, 6],
        "missed or doubled (seq 1 is the claim's system entry)"
    );
    let texts: Value = customer
        .execute(
            "return [...document.querySelectorAll('.messages .content')].map(e => e.textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        texts,
        json!([
            "before the drop",
            "while away 1",
            "while away 2",
            "while away 3",
            "after the return"
        ])
    );
    customer.close().await.expect("close browser");
}

#[tokio::test]
async fn pages_and_assets_are_served_with_a_strict_policy() {
    let app = spawn_app(Options::open()).await;
    for (path, kind) in [
        ("/customer", "text/html"),
        ("/officer", "text/html"),
        ("/admin", "text/html"),
        ("/assets/styles.css", "text/css"),
        ("/assets/js/pages/officer.js", "text/javascript"),
        ("/assets/js/socket.js", "text/javascript"),
    ] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        let csp = header("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff");
    }
    // The index names every page.
    let index = app
        .request(reqwest::Method::GET, "/", None, None)
        .await
        .expect(200);
    assert_eq!(
        [
            &index["customerPage"],
            &index["officerConsole"],
            &index["adminConsole"]
        ],
        [&json!("/customer"), &json!("/officer"), &json!("/admin")]
    );
    // Every asset a page refers to is served (no broken module import).
    for page in ["/customer", "/officer", "/admin"] {
        let html = app
            .client
            .get(app.url(page))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("<script>"), "inline script in {page}");
        for src in html.split('"').filter(|s| s.starts_with("/assets/")) {
            let status = app.client.get(app.url(src)).send().await.unwrap().status();
            assert_eq!(status, 200, "{page} refers to {src}");
        }
    }
    for path in [
        "/assets/nope.js",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/js/../../Cargo.toml",
    ] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_arrives_by_identity_token_and_officers_see_their_name() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::secured()).await;
    app.create_officer(app.admin(), json!({ "id": "alice", "password": PASSWORD }))
        .await
        .expect(201);
    let alice = driver.browser("alice").await;
    let customer = driver.browser("customer").await;
    let late = driver.browser("late").await;
    login_officer(&alice, &app, "alice").await;

    // The host application sends its customer to the page with a fresh token: the page
    // signs in by itself and takes the token out of the address bar.
    let token = app.identity_token("cust-9", 300, None, Some("Ada Lovelace"));
    customer
        .goto(&app.url(&format!("/customer?identityToken={token}")))
        .await
        .expect("open the link");
    wait_text(&customer, ".connection", "Live").await;
    let url = customer.current_url().await.expect("current url");
    assert_eq!(url.query(), None, "{url}");
    let history = customer
        .execute("return [location.href, history.length];", vec![])
        .await
        .expect("read the location");
    assert!(!history.to_string().contains(&token), "{history}");
    send(&customer, "Hello, it is Ada.").await;

    // Officers see who it is by name.
    wait_text(&alice, "#queue", "Ada Lovelace (cust-9)").await;
    click(&alice, "#queue li[data-chat-id] button.claim").await;
    wait_text(&alice, "#chat-title", "Chat with Ada Lovelace (cust-9)").await;
    wait_text(&alice, ".messages", "it is Ada").await;

    // An expired link signs nobody in and says why.
    let expired = app.identity_token("cust-10", -60, None, None);
    late.goto(&app.url(&format!("/customer?identityToken={expired}")))
        .await
        .expect("open the expired link");
    wait_text(&late, "#login-form .error", "expired").await;
    assert_eq!(late.current_url().await.unwrap().query(), None);

    for b in [alice, customer, late] {
        b.close().await.expect("close browser");
    }
}
