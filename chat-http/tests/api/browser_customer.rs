//! The customer page as a bank ships it, in a real headless Chromium against the real
//! server: a host application's signed link starts the chat without the form (and
//! leaves no secret in the address bar), the conversation fills a phone's screen, the
//! favicon is served, and the bank's branding (`--branding`, checked at start: a bad
//! value stops the built binary with a sentence) is shown as text and colours.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::browser::{
    driver, eventually, fill, js, login_customer, screenshot, send, text_of, wait_text,
};
use crate::helpers::{Options, spawn_app};
use crate::server::read_banner;

const BIN: &str = env!("CARGO_BIN_EXE_chat-http");

/// The built binary, started on port 0 in a temporary directory; killed on drop.
struct Binary {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    /// The binary with `--branding` set to a file holding `branding`, and `files` (name,
    /// bytes) written beside it (a logo).
    fn branded(branding: &Value, files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("branding.json"), branding.to_string()).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let mut child = Command::new(BIN)
            .current_dir(dir.path())
            .args(["--bind", "127.0.0.1:0", "--db", "test.db", "--log", "warn"])
            .args(["--branding", "branding.json"])
            .env_remove("CHAT_ADMIN_TOKEN")
            .env_remove("CHAT_CUSTOMER_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chat-http");
        let (base, banner) = read_banner(&mut child);
        assert!(banner.contains("branding.json"), "{banner}");
        Self {
            child,
            base,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Runs the binary with a branding file holding `text` (and `files` beside it); it must
/// refuse to start with exit code 2. Returns its stderr.
fn refused_branding(text: &str, files: &[(&str, &[u8])]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("branding.json"), text).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["--bind", "127.0.0.1:0", "--db", "test.db"])
        .args(["--branding", "branding.json"])
        .env_remove("CHAT_ADMIN_TOKEN")
        .env_remove("CHAT_CUSTOMER_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a server with branding {text} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2), "{text} was not refused");
    assert!(
        !dir.path().join("test.db").exists(),
        "nothing opened before refusing"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    stderr
}

/// The page's address: the path and its query (empty when there is none).
async fn address(b: &Client) -> (String, Option<String>) {
    let url = b.current_url().await.expect("current url");
    (url.path().to_string(), url.query().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_link_starts_the_chat_at_once_and_a_bad_one_shows_the_form() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::secured()).await;
    let officer = app.new_officer("alice").await;
    let signature = app.signature("cust-5").expect("secured");
    let link = app.url(&format!(
        "/customer?customerId=cust-5&signature={signature}"
    ));

    // The link signs the customer in by itself: no form, the chat is live at once, and
    // neither the id nor the signature stays in the address bar or the history entry.
    let customer = driver.browser("customer").await;
    customer.goto(&link).await.expect("open the link");
    wait_text(&customer, ".connection", "Live").await;
    assert!(
        customer.find(Locator::Css("#login-form")).await.is_err(),
        "the form was shown"
    );
    assert_eq!(address(&customer).await, ("/customer".to_string(), None));
    let href = js(&customer, "return location.href;").await;
    assert!(!href.to_string().contains(&signature), "{href}");
    send(&customer, "Hello from the link").await;
    wait_text(&customer, ".messages", "Hello from the link").await;
    let queue = app.queue(Some(&officer)).await.expect(200);
    assert_eq!(queue[0]["customerId"], "cust-5", "{queue}");
    let chat = queue[0]["id"].as_str().unwrap().to_string();

    // The same link again resumes the same chat, with its history.
    customer.goto(&link).await.expect("open the link again");
    wait_text(&customer, ".connection", "Live").await;
    wait_text(&customer, ".messages", "Hello from the link").await;
    assert_eq!(address(&customer).await.1, None);
    let queue = app.queue(Some(&officer)).await.expect(200);
    assert_eq!(queue.as_array().map(Vec::len), Some(1), "{queue}");
    assert_eq!(queue[0]["id"], chat.as_str());

    // A wrong signature signs nobody in: the form, prefilled, says why; the bad
    // signature is gone from the address bar too.
    let stranger = driver.browser("stranger").await;
    let forged = "ab".repeat(32);
    stranger
        .goto(&app.url(&format!("/customer?customerId=cust-6&signature={forged}")))
        .await
        .expect("open a forged link");
    let said = wait_text(&stranger, "#login-form .error", "not valid").await;
    assert!(said.contains("open the chat again"), "{said}");
    let prefilled = js(
        &stranger,
        "return document.getElementById('customer-id').value;",
    )
    .await;
    assert_eq!(prefilled, json!("cust-6"));
    assert_eq!(address(&stranger).await, ("/customer".to_string(), None));
    assert_eq!(
        app.queue(Some(&officer))
            .await
            .expect(200)
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    for b in [customer, stranger] {
        b.close().await.expect("close browser");
    }
}

/// Sizes of the customer page's parts, as the browser lays them out.
async fn layout(b: &Client) -> Value {
    js(
        b,
        "const box = (css) => { const r = document.querySelector(css).getBoundingClientRect(); \
           return { top: r.top, bottom: r.bottom, height: r.height, left: r.left, right: r.right }; }; \
         const root = document.documentElement; \
         return { width: innerWidth, height: innerHeight, \
           scrollWidth: Math.max(root.scrollWidth, document.body.scrollWidth), \
           scrollHeight: Math.max(root.scrollHeight, document.body.scrollHeight), \
           bar: box('#brand'), timeline: box('.messages'), composer: box('.composer'), \
           input: box('#message-input') };",
    )
    .await
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut v = v;
    for key in path {
        v = &v[*key];
    }
    v.as_f64().unwrap_or_else(|| panic!("{path:?} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_fills_a_phone_screen_with_the_composer_at_the_bottom() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::open()).await;
    let officer = app.new_officer("alice").await;
    let b = driver.browser("laptop").await;
    login_customer(&b, &app, "cust-1").await;
    let chat = app.queue(Some(&officer)).await.expect(200)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.claim(Some(&officer), "alice", &chat).await.expect(200);
    send(
        &b,
        "Hello, I would like to know where my loan application stands.",
    )
    .await;
    app.say(
        &officer,
        &chat,
        "Hello! I am looking at it now: it is with the underwriting team.",
    )
    .await;
    wait_text(&b, ".messages", "underwriting team").await;
    // An unbroken word must wrap, not widen the page.
    send(&b, &"0123456789".repeat(20)).await;
    wait_text(&b, ".messages", "0123456789012345").await;

    // A laptop: the timeline takes the height the rest leaves (it was a fixed 60vh at
    // most), and the composer sits at the bottom there too.
    let desk = layout(&b).await;
    let height = num(&desk, &["height"]);
    assert!(
        num(&desk, &["timeline", "height"]) > 0.5 * height,
        "desktop: {desk}"
    );
    assert!(
        num(&desk, &["composer", "bottom"]) >= height - 48.0,
        "desktop: {desk}"
    );
    screenshot(&b, "customer-page-desktop").await;

    b.close().await.expect("close browser");

    // A phone (390 x 844 CSS pixels, emulated): the bar is compact, the timeline takes
    // more than 60% of the height, the composer sits at the bottom, nothing scrolls
    // sideways and the page itself does not scroll (only the timeline does).
    let phone = driver.phone("phone", 390, 844).await;
    login_customer(&phone, &app, "cust-1").await;
    wait_text(&phone, ".messages", "underwriting team").await;
    let shown = layout(&phone).await;
    let (width, height) = (num(&shown, &["width"]), num(&shown, &["height"]));
    assert_eq!((width, height), (390.0, 844.0), "{shown}");
    assert!(num(&shown, &["bar", "height"]) <= 56.0, "{shown}");
    assert!(
        num(&shown, &["timeline", "height"]) > 0.6 * height,
        "timeline too short: {shown}"
    );
    let composer_bottom = num(&shown, &["composer", "bottom"]);
    assert!(
        composer_bottom <= height + 0.5 && composer_bottom >= height - 32.0,
        "composer not at the bottom: {shown}"
    );
    assert!(
        num(&shown, &["scrollWidth"]) <= width,
        "overflows sideways: {shown}"
    );
    assert!(
        num(&shown, &["scrollHeight"]) <= height + 0.5,
        "page scrolls: {shown}"
    );
    for part in ["timeline", "composer"] {
        assert!(
            num(&shown, &[part, "left"]) >= 0.0 && num(&shown, &[part, "right"]) <= width,
            "{part} outside the screen: {shown}"
        );
    }
    screenshot(&phone, "customer-page-phone").await;
    phone.close().await.expect("close browser");

    // The on-screen keyboard up: with `interactive-widget=resizes-content` the viewport
    // shrinks to what is above it (here 390 x 480). The composer stays whole and in
    // view at the bottom; the timeline shrinks instead.
    let typing = driver.phone("typing", 390, 480).await;
    login_customer(&typing, &app, "cust-1").await;
    typing
        .find(Locator::Css("#message-input"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let shown = layout(&typing).await;
    let height = num(&shown, &["height"]);
    assert_eq!(height, 480.0, "{shown}");
    assert!(
        num(&shown, &["input", "top"]) >= num(&shown, &["timeline", "bottom"])
            && num(&shown, &["composer", "bottom"]) <= height + 0.5
            && num(&shown, &["composer", "bottom"]) >= height - 32.0,
        "composer hidden: {shown}"
    );
    assert!(num(&shown, &["timeline", "height"]) >= 80.0, "{shown}");
    assert!(
        num(&shown, &["scrollWidth"]) <= num(&shown, &["width"]),
        "{shown}"
    );
    let focused = js(&typing, "return document.activeElement?.id ?? null;").await;
    assert_eq!(focused, json!("message-input"));
    typing.close().await.expect("close browser");
}

#[tokio::test]
async fn the_favicon_and_the_default_branding_are_served() {
    let app = spawn_app(Options::open()).await;
    let resp = app
        .client
        .get(app.url("/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/x-icon");
    let icon = resp.bytes().await.unwrap();
    assert_eq!(&icon[..4], &[0, 0, 1, 0], "not an ICO file");
    let resp = app
        .client
        .get(app.url("/assets/favicon.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/svg+xml");
    assert!(resp.text().await.unwrap().contains("<svg"));
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
        assert!(
            html.contains(r#"<link rel="icon" href="/favicon.ico""#)
                && html.contains(r#"href="/assets/favicon.svg" type="image/svg+xml""#),
            "{page} links no icon"
        );
    }
    // Without --branding: the default look, no logo, no hours.
    let branding = app
        .request(reqwest::Method::GET, "/api/branding", None, None)
        .await
        .expect(200);
    assert_eq!(
        branding,
        json!({
            "name": "Customer support",
            "primaryColor": "#1f4e79",
            "accentColor": "#0f766e",
            "welcome": branding["welcome"],
            "logo": null,
            "hours": null,
        })
    );
    assert!(branding["welcome"].as_str().is_some_and(|w| !w.is_empty()));
    let logo = app
        .client
        .get(app.url("/branding/logo"))
        .send()
        .await
        .unwrap();
    assert_eq!(logo.status(), 404);
}

const LOGO: &[u8] = br##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 80 24" width="80" height="24"><rect width="80" height="24" fill="#0b4f8a"/><script>parent.pwned = 3</script></svg>"##;
const HOSTILE: &str = "<img src=x onerror=\"window.pwned = 1\"><b>Welcome</b> to Northwind.\nWe answer within minutes.";

fn always(ranges: Value) -> Value {
    json!({
        "timeZone": "Europe/Paris",
        "mon": ranges, "tue": ranges, "wed": ranges, "thu": ranges,
        "fri": ranges, "sat": ranges, "sun": ranges,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_wears_the_configured_branding_as_text_and_colours() {
    let Some(driver) = driver() else { return };
    let server = Binary::branded(
        &json!({
            "name": "Northwind <i>Bank</i>",
            "primaryColor": "#0B4F8A",
            "accentColor": "#b45309",
            "welcome": HOSTILE,
            "logo": "logo.svg",
            "hours": always(json!(["00:00-24:00"])),
        }),
        &[("logo.svg", LOGO)],
    );
    // The logo is served as an image that can run nothing, even when opened directly.
    let client = crate::helpers::http_client();
    let logo = client
        .get(server.url("/branding/logo"))
        .send()
        .await
        .unwrap();
    assert_eq!(logo.status(), 200);
    assert_eq!(logo.headers()["content-type"], "image/svg+xml");
    let csp = logo.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    // The page carries the branding as a data block whose markup is escaped.
    let html = client
        .get(server.url("/customer"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"<script type="application/json" id="branding-data">"#),
        "{html}"
    );
    assert!(html.contains(r"Northwind \u003ci\u003eBank"), "{html}");
    assert!(!html.contains("<i>") && !html.contains("<img"), "{html}");

    let b = driver.browser("branded").await;
    b.goto(&server.url("/customer"))
        .await
        .expect("open the page");
    wait_text(&b, "#brand-name", "Northwind").await;
    // Name and welcome are text: the markup in them shows as written and is not run.
    assert_eq!(
        text_of(&b, "#brand-name").await.unwrap(),
        "Northwind <i>Bank</i>"
    );
    let welcome = text_of(&b, "#welcome").await.unwrap();
    assert!(welcome.starts_with("<img src=x onerror="), "{welcome}");
    assert!(
        welcome.contains("<b>Welcome</b> to Northwind."),
        "{welcome}"
    );
    let page = js(
        &b,
        "return { pwned: window.pwned ?? null, \
           markup: document.querySelectorAll('#welcome *, #brand-name *').length, \
           title: document.title, \
           bar: getComputedStyle(document.getElementById('brand')).backgroundColor, \
           rule: getComputedStyle(document.getElementById('brand')).borderBottomColor, \
           button: getComputedStyle(document.querySelector('#login-form button[type=submit]')).backgroundColor };",
    )
    .await;
    assert_eq!(page["pwned"], Value::Null, "{page}");
    assert_eq!(page["markup"], 0, "{page}");
    assert_eq!(page["title"], "Chat with Northwind <i>Bank</i>", "{page}");
    assert_eq!(page["bar"], "rgb(11, 79, 138)", "{page}");
    assert_eq!(page["button"], "rgb(11, 79, 138)", "{page}");
    assert_eq!(page["rule"], "rgb(180, 83, 9)", "{page}");
    // The logo loads from this server under the page's policy (img-src 'self').
    let logo_width = eventually("the logo to load", || async {
        let v = js(
            &b,
            "const img = document.querySelector('#brand img.brand-logo'); \
            return img && img.complete && img.naturalWidth > 0 ? img.naturalWidth : null;",
        )
        .await;
        v.as_u64()
    })
    .await;
    assert_eq!(logo_width, 80);
    // Open all day every day: the hours and the sentence say so.
    wait_text(&b, "#open-now", "We're open").await;
    wait_text(&b, "#open-sign", "Open now").await;
    let hours = text_of(&b, "#opening-hours").await.unwrap();
    for day in ["Monday", "Sunday", "00:00–24:00", "Europe/Paris"] {
        assert!(hours.contains(day), "{day} missing from {hours:?}");
    }

    screenshot(&b, "customer-page-branded").await;

    // In the chat, too, the welcome is text and the bank is open.
    fill(&b, "#customer-id", "cust-1").await;
    b.find(Locator::Css("#login-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&b, ".connection", "Live").await;
    wait_text(&b, "#open-note", "We're open").await;
    let shown = text_of(&b, "#chat-welcome").await.unwrap();
    assert!(shown.contains("<b>Welcome</b>"), "{shown}");
    assert_eq!(js(&b, "return window.pwned ?? null;").await, Value::Null);
    b.close().await.expect("close browser");
    drop(server);

    // Closed every day: the page says to leave a message, before and in the chat.
    let server = Binary::branded(&json!({ "hours": always(json!([])) }), &[]);
    let b = driver.browser("closed").await;
    b.goto(&server.url("/customer"))
        .await
        .expect("open the page");
    let closed = "We're closed now, leave a message and we'll reply when we open";
    wait_text(&b, "#open-now", closed).await;
    wait_text(&b, "#open-sign", "Closed now").await;
    wait_text(&b, "#opening-hours", "Closed").await;
    fill(&b, "#customer-id", "cust-2").await;
    b.find(Locator::Css("#login-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&b, ".connection", "Live").await;
    wait_text(&b, "#open-note", closed).await;
    // The default look: its name, its colours, its mark instead of a logo.
    assert_eq!(
        text_of(&b, "#brand-name").await.unwrap(),
        "Customer support"
    );
    let bar = js(
        &b,
        "return getComputedStyle(document.getElementById('brand')).backgroundColor;",
    )
    .await;
    assert_eq!(bar, "rgb(31, 78, 121)");
    b.close().await.expect("close browser");
}

#[test]
fn a_bad_branding_value_stops_the_server_with_a_sentence() {
    for (file, says) in [
        (
            r##"{"primaryColor":"red"}"##,
            "primaryColor \"red\" is not a colour",
        ),
        (
            r##"{"primaryColor":"#fff;}body{background:url(//evil)"}"##,
            "#rrggbb",
        ),
        (r##"{"accentColor":"#ffff00"}"##, "contrast"),
        (r##"{"name":""}"##, "name"),
        (r##"{"welcome":"hi","colour":"#000000"}"##, "unknown field"),
        (
            r##"{"hours":{"timeZone":"UTC","mon":["9-5"]}}"##,
            "hours.mon",
        ),
        (r##"{"logo":"missing.png"}"##, "logo \"missing.png\""),
        ("{", "JSON"),
    ] {
        let stderr = refused_branding(file, &[]);
        assert!(
            stderr.contains("--branding branding.json"),
            "{file}: {stderr}"
        );
        assert!(stderr.contains(says), "{file}: {stderr}");
    }
    // A logo that is not the image it claims to be.
    let stderr = refused_branding(
        r##"{"logo":"logo.png"}"##,
        &[("logo.png", b"<html>".as_slice())],
    );
    assert!(stderr.contains("content is not image/png"), "{stderr}");
    // A file that does not exist.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["--bind", "127.0.0.1:0", "--db", "test.db"])
        .env("CHAT_BRANDING", "nowhere.json")
        .env_remove("CHAT_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--branding nowhere.json"), "{stderr}");
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--branding") && help.contains("CHAT_BRANDING"),
        "{help}"
    );
    assert!(!dir.path().join("test.db").exists());
}
