//! Accessibility: axe-core (vendored in `tests/assets/axe-core/`, no network needed) run
//! in real headless Chromium on every state of the three pages: the customer page, the
//! officer console and the admin console, from the sign-in form and its refusals to the
//! open chat, the dialogs that ask first and the ended chat. A test fails listing every
//! violation found (page state, rule, impact, the elements' selectors, what to do), so
//! that one run shows all that is wrong.
//!
//! The rules run are those tagged WCAG 2.0, 2.1 and 2.2 A and AA, plus axe's best
//! practices (landmarks, one main, headings): `AXE_TAGS`. Only violations fail a test;
//! what axe cannot decide by itself ("incomplete", e.g. contrast over a gradient) is not
//! judged. `AXE_TOLERATE=rule,rule` lets violations of those rules pass for a local run
//! (they are still printed); CI sets nothing, so nothing is tolerated.

use std::collections::{BTreeMap, BTreeSet};

use fantoccini::Client;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::browser::{
    click, count, driver, eventually, fill, login_officer, send, text_of, wait_text,
};
use crate::browser_lifecycle::desk;
use crate::helpers::{ADMIN_TOKEN, Options, PASSWORD, spawn_app};

/// axe-core 4.14.1 (MPL-2.0), as published on npm; see `tests/assets/axe-core/README.md`.
const AXE_SOURCE: &str = include_str!("../assets/axe-core/axe.min.js");

/// The rule sets run: WCAG 2.0, 2.1 and 2.2 at levels A and AA, and axe's best practices.
const AXE_TAGS: [&str; 6] = [
    "wcag2a",
    "wcag2aa",
    "wcag21a",
    "wcag21aa",
    "wcag22aa",
    "best-practice",
];

/// Injects axe into the page unless it is there already, runs it on the whole document
/// and answers the violations and the number of rules that ran. The script returns
/// axe's promise, which WebDriver awaits.
const RUN_AXE: &str = r#"
const [tags] = arguments;
return window.axe
  .run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
  .then((r) => ({
    rules: r.violations.length + r.passes.length + r.incomplete.length + r.inapplicable.length,
    violations: r.violations.map((v) => ({
      id: v.id,
      impact: v.impact ?? 'unknown',
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.map(String).join(' '), summary: n.failureSummary ?? '' })),
    })),
  }));
"#;

#[derive(Debug, Deserialize)]
struct Run {
    rules: usize,
    violations: Vec<Violation>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Violation {
    id: String,
    impact: String,
    help: String,
    help_url: String,
    nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
struct Node {
    target: String,
    summary: String,
}

/// Runs axe on the page as it is now.
async fn axe(b: &Client) -> Run {
    let present = b
        .execute("return typeof window.axe === 'object';", vec![])
        .await
        .expect("look for axe");
    if present != json!(true) {
        b.execute(&format!("{AXE_SOURCE}\nreturn null;"), vec![])
            .await
            .expect("inject axe-core");
    }
    let run = b
        .execute(RUN_AXE, vec![json!(AXE_TAGS)])
        .await
        .expect("run axe-core");
    serde_json::from_value(run).expect("axe's results")
}

/// One rule's violations: its title (id, impact, help, address) and, by element
/// (selector), what is wrong there and the page states it was seen in.
type RuleFindings = (String, BTreeMap<String, (String, Vec<String>)>);

/// The violations found in every page state checked, reported together: by rule, then
/// by element, each with the page states it was seen in.
struct Audit {
    tolerated: BTreeSet<String>,
    /// By rule id.
    found: BTreeMap<String, RuleFindings>,
    states: Vec<String>,
}

impl Audit {
    fn new() -> Self {
        let tolerated = std::env::var("AXE_TOLERATE")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        Self::tolerating(tolerated)
    }

    fn tolerating(tolerated: BTreeSet<String>) -> Self {
        Self {
            tolerated,
            found: BTreeMap::new(),
            states: Vec::new(),
        }
    }

    /// Runs axe on the page in `state` (a few words: which page, what it shows) and
    /// records every violation.
    async fn check(&mut self, b: &Client, state: &str) {
        let run = axe(b).await;
        // A handful of rules would mean axe did not really run.
        assert!(run.rules > 50, "{state}: axe ran only {} rules", run.rules);
        self.states.push(state.to_string());
        for v in run.violations {
            if self.tolerated.contains(&v.id) {
                eprintln!(
                    "tolerated (AXE_TOLERATE) in [{state}]: {} at {:?}",
                    v.id,
                    v.nodes.iter().map(|n| &n.target).collect::<Vec<_>>()
                );
                continue;
            }
            let (_, nodes) = self.found.entry(v.id.clone()).or_insert_with(|| {
                (
                    format!("{} ({}): {} <{}>", v.id, v.impact, v.help, v.help_url),
                    BTreeMap::new(),
                )
            });
            for n in v.nodes {
                let summary = n
                    .summary
                    .replace("Fix any of the following:", "")
                    .replace("Fix all of the following:", "")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let (_, states) = nodes.entry(n.target).or_insert((summary, Vec::new()));
                states.push(state.to_string());
            }
        }
    }

    /// The report: one paragraph per rule, a line per element.
    fn report(&self) -> String {
        let mut out = String::new();
        for (title, nodes) in self.found.values() {
            out.push_str(&format!("\n{title}\n"));
            for (target, (summary, states)) in nodes {
                out.push_str(&format!(
                    "    at {target}: {summary}\n      in: {}\n",
                    states.join("; ")
                ));
            }
        }
        out
    }

    /// Fails listing every violation found, if there is any.
    fn finish(self) {
        eprintln!(
            "axe checked {} page states: {:?}",
            self.states.len(),
            self.states
        );
        assert!(
            self.found.is_empty(),
            "accessibility violations of {} rules (axe-core, tags {AXE_TAGS:?}):\n{}",
            self.found.len(),
            self.report()
        );
    }
}

/// Waits until the element at `css` says something (an error line, say).
async fn wait_said(b: &Client, css: &str) {
    eventually(&format!("{css} to say something"), || async {
        text_of(b, css).await.filter(|t| !t.trim().is_empty())
    })
    .await;
}

async fn wait_rows(b: &Client, css: &str, n: usize) {
    eventually(&format!("{n} chats in {css}"), || async {
        (count(b, &format!("{css} li[data-chat-id]")).await == n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_a_violation_put_into_the_page() {
    // The harness itself: a violation put into a real page is found and reported.
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::secured()).await;
    let b = driver.browser("admin").await;
    b.goto(&app.url("/admin")).await.expect("open the console");
    wait_text(&b, "#login-form", "Admin token").await;
    b.execute(
        "const i = document.createElement('input'); i.id = 'unlabelled'; document.querySelector('#login-form').append(i); return null;",
        vec![],
    )
    .await
    .expect("spoil the page");
    let run = axe(&b).await;
    let label = run
        .violations
        .iter()
        .find(|v| v.id == "label")
        .unwrap_or_else(|| panic!("an unlabelled input not found: {run:?}"));
    assert_eq!(label.nodes.len(), 1, "{label:?}");
    assert_eq!(label.nodes[0].target, "#unlabelled");
    // And the report lists it, with the page state and the selector.
    let mut audit = Audit::tolerating(BTreeSet::new());
    audit.check(&b, "admin: spoiled").await;
    let report = audit.report();
    assert!(
        report.contains("\nlabel (critical): ")
            && report.contains("    at #unlabelled: ")
            && report.contains("in: admin: spoiled"),
        "{report}"
    );
    b.close().await.expect("close browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_customer_page_and_officer_console_in_every_state() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::secured()).await;
    let mut audit = Audit::new();
    let alice = driver.browser("alice").await;
    let customer = driver.browser("customer").await;

    // The officer's sign-in form, then a refused password said in words.
    alice
        .goto(&app.url("/officer"))
        .await
        .expect("open console");
    wait_text(&alice, "#login-form", "Officer id").await;
    audit.check(&alice, "officer: sign-in form").await;
    fill(&alice, "#officer-id", "alice").await;
    fill(&alice, "#password", "not-her-password").await;
    click(&alice, "#login-form button[type=submit]").await;
    wait_said(&alice, "#login-form .error").await;
    audit.check(&alice, "officer: a refused sign-in").await;
    login_officer(&alice, &app, "alice").await;
    wait_text(&alice, "#queue", "The queue is empty").await;
    audit.check(&alice, "officer: an empty console").await;

    // The customer's sign-in form, an expired link refused, then a valid link.
    customer
        .goto(&app.url("/customer"))
        .await
        .expect("open page");
    wait_text(&customer, "#login-form", "customer number").await;
    audit.check(&customer, "customer: sign-in form").await;
    let expired = app.identity_token("cust-1", -60, None, None);
    customer
        .goto(&app.url(&format!("/customer?identityToken={expired}")))
        .await
        .expect("open the expired link");
    wait_text(&customer, "#login-form .error", "expired").await;
    audit
        .check(&customer, "customer: an expired link refused")
        .await;
    let link = app.identity_token("cust-1", 600, None, Some("Ada Lovelace"));
    customer
        .goto(&app.url(&format!("/customer?identityToken={link}")))
        .await
        .expect("open the link");
    wait_text(&customer, ".connection", "Live").await;
    wait_text(&customer, "#chat-status", "Waiting for an officer").await;
    send(&customer, "Hello, I have a question about my loan.").await;
    wait_text(&customer, ".messages", "question about my loan").await;
    audit
        .check(&customer, "customer: waiting in the queue")
        .await;

    // Two chats in the queue.
    app.new_customer("cust-2").await;
    wait_rows(&alice, "#queue", 2).await;
    wait_text(&alice, "#queue", "Ada Lovelace").await;
    audit.check(&alice, "officer: the queue with chats").await;

    // Alice claims Ada's (the oldest); messages both ways.
    click(&alice, "#queue li[data-chat-id] button.claim").await;
    wait_text(&alice, "#chat-status", "You are talking with").await;
    send(&alice, "Hello Ada, this is Alice.").await;
    wait_text(&customer, ".messages", "this is Alice").await;
    send(&customer, "Thank you, Alice.").await;
    wait_text(&alice, ".messages", "Thank you, Alice").await;
    wait_rows(&alice, "#my-chats", 1).await;
    audit
        .check(&alice, "officer: a chat open with messages, in My chats")
        .await;
    audit
        .check(&customer, "customer: chatting, messages both ways")
        .await;

    // The transfer picker, then cancelled.
    click(&alice, ".chat-actions button.transfer").await;
    wait_text(&alice, ".transfer-picker", "Transfer to").await;
    audit.check(&alice, "officer: the transfer picker").await;
    click(&alice, ".transfer-picker button.cancel").await;

    // The customer is asked before ending; "Keep chatting".
    click(&customer, "button.end-chat").await;
    wait_text(&customer, ".confirm", "End this conversation?").await;
    audit
        .check(&customer, "customer: asked before ending")
        .await;
    click(&customer, ".confirm button.cancel").await;

    // Alice is asked before ending, and ends it.
    click(&alice, ".chat-actions button.resolve").await;
    wait_text(&alice, ".chat-actions .confirm", "End this conversation").await;
    audit.check(&alice, "officer: asked before ending").await;
    click(&alice, ".chat-actions button.resolve-yes").await;
    wait_text(&customer, "#ended", "This conversation has ended").await;
    audit.check(&customer, "customer: the chat ended").await;
    wait_text(&alice, "#chat-status", "This conversation has ended").await;
    audit
        .check(&alice, "officer: an ended chat, read-only with Reopen")
        .await;
    click(&alice, "#tab-resolved").await;
    wait_rows(&alice, "#my-resolved", 1).await;
    audit.check(&alice, "officer: My chats, Resolved tab").await;

    // Ada writes again: Alice sees her earlier conversation beside the new one.
    click(&customer, "#new-conversation").await;
    wait_text(&customer, "#chat-status", "Waiting for an officer").await;
    send(&customer, "One more question, please.").await;
    click(&alice, "#tab-open").await;
    wait_rows(&alice, "#queue", 2).await;
    alice
        .execute(
            "[...document.querySelectorAll('#queue li[data-chat-id]')].find(li => li.textContent.includes('Ada')).querySelector('button.claim').click(); return null;",
            vec![],
        )
        .await
        .expect("claim Ada's new chat");
    wait_text(&alice, "#earlier-chats", "ended").await;
    click(&alice, "#earlier-chats li button.show").await;
    wait_text(&alice, "#earlier-chats", "this is Alice").await;
    audit
        .check(
            &alice,
            "officer: a chat with the earlier conversation shown",
        )
        .await;

    audit.finish();
    for b in [alice, customer] {
        b.close().await.expect("close browser");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_admin_console_in_every_state() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::secured()).await;
    app.officer_switch(app.admin(), "bob", "disable")
        .await
        .expect(200);
    app.new_customer("cust-1").await;
    let mut audit = Audit::new();
    let b = driver.browser("admin").await;

    b.goto(&app.url("/admin")).await.expect("open the console");
    wait_text(&b, "#login-form", "Admin token").await;
    audit.check(&b, "admin: sign-in form").await;
    fill(&b, "#admin-token", "not-the-admin-token-0123456789abcdef").await;
    click(&b, "#login-form button[type=submit]").await;
    wait_text(&b, "#login-form .error", "not the admin token").await;
    audit.check(&b, "admin: a refused token").await;

    fill(&b, "#admin-token", ADMIN_TOKEN).await;
    click(&b, "#login-form button[type=submit]").await;
    wait_text(&b, ".connection", "Live").await;
    wait_text(&b, "#queue-length", "1 chat waiting").await;
    wait_text(&b, "#officers-table", "Alice").await;
    wait_text(&b, "#officers-table", "Disabled").await;
    audit
        .check(&b, "admin: the queue and the officer table")
        .await;

    // The new-officer form with the server's refusal.
    fill(&b, "#new-officer-id", "carol").await;
    fill(&b, "#new-officer-password", "short").await;
    click(&b, "#create-officer button[type=submit]").await;
    wait_text(&b, "#create-error", "password").await;
    audit
        .check(&b, "admin: the new-officer form with a refusal")
        .await;
    // And created: the notice that says so.
    fill(&b, "#new-officer-password", PASSWORD).await;
    click(&b, "#create-officer button[type=submit]").await;
    wait_text(&b, "#create-done", "was created").await;
    audit.check(&b, "admin: an officer created").await;

    // A capacity refused, in words.
    let alice_capacity = "#officers-table tr[data-officer-id=\"alice\"] .capacity-input";
    fill(&b, alice_capacity, "-1").await;
    click(
        &b,
        "#officers-table tr[data-officer-id=\"alice\"] .save-capacity",
    )
    .await;
    wait_text(&b, "#officers-notice", "Not accepted").await;
    audit.check(&b, "admin: a refused capacity").await;

    // Asked before disabling.
    click(
        &b,
        "#officers-table tr[data-officer-id=\"alice\"] button.disable",
    )
    .await;
    wait_text(
        &b,
        "#officers-table tr[data-officer-id=\"alice\"] .confirm",
        "Disable",
    )
    .await;
    audit.check(&b, "admin: asked before disabling").await;

    audit.finish();
    let left: Value = b
        .execute(
            "return document.querySelectorAll('tr.disabled').length;",
            vec![],
        )
        .await
        .expect("count disabled rows");
    assert_eq!(left, json!(1), "only Bob is disabled");
    b.close().await.expect("close browser");
}

/// The keyboard focus ring of the focused element: what it is, the outline's style and
/// width, and its contrast with what is around it (the nearest opaque background: the
/// element's own for a ring drawn inside it, its parent's for one drawn outside).
const FOCUS_RING: &str = r#"
const el = document.activeElement;
if (!el || el === document.body) return null;
const cs = getComputedStyle(el);
const rgba = (c) => { const v = (c.match(/[\d.]+/g) || []).map(Number); return v.length === 3 ? [...v, 1] : v; };
const lum = (c) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
};
const inside = parseFloat(cs.outlineOffset) < 0;
let around = [255, 255, 255, 1];
for (let e = inside ? el : el.parentElement; e; e = e.parentElement) {
  const c = rgba(getComputedStyle(e).backgroundColor);
  if (c[3] > 0) { around = c; break; }
}
const a = lum(rgba(cs.outlineColor)), b = lum(around);
const what = el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} "${(el.textContent || '').trim().slice(0, 30)}"`;
return { what, style: cs.outlineStyle, width: parseFloat(cs.outlineWidth), ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
"#;

/// Presses Tab `stops` times from the top of the page and answers, for each element
/// reached, why its focus ring falls short (none shown, thinner than 2 px, or under 3:1
/// against its surroundings, WCAG 1.4.11), and how many were reached.
async fn weak_focus_rings(b: &Client, stops: usize) -> (Vec<String>, usize) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    use fantoccini::key::Key;
    b.execute("document.activeElement?.blur(); return null;", vec![])
        .await
        .expect("blur");
    let mut weak = Vec::new();
    let mut seen = BTreeSet::new();
    for _ in 0..stops {
        let tab = KeyActions::new("keyboard".into())
            .then(KeyAction::Down {
                value: Key::Tab.into(),
            })
            .then(KeyAction::Up {
                value: Key::Tab.into(),
            });
        b.perform_actions(tab).await.expect("press Tab");
        let ring = b.execute(FOCUS_RING, vec![]).await.expect("read the ring");
        if ring.is_null() {
            continue;
        }
        let what = ring["what"].as_str().unwrap_or_default().to_string();
        if !seen.insert(what.clone()) {
            continue;
        }
        let ratio = ring["ratio"].as_f64().unwrap_or_default();
        let width = ring["width"].as_f64().unwrap_or_default();
        if ring["style"] == "none" || width < 2.0 || ratio < 3.0 {
            weak.push(format!(
                "{what}: outline {} {width}px, contrast {ratio:.2}:1",
                ring["style"]
            ));
        }
    }
    (weak, seen.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_keyboard_focus_is_visible_with_3_to_1_contrast_on_every_stop() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::secured()).await;
    app.new_customer("cust-1").await;
    let admin = driver.browser("admin").await;
    let alice = driver.browser("alice").await;

    admin
        .goto(&app.url("/admin"))
        .await
        .expect("open the console");
    fill(&admin, "#admin-token", ADMIN_TOKEN).await;
    click(&admin, "#login-form button[type=submit]").await;
    wait_text(&admin, ".connection", "Live").await;
    wait_text(&admin, "#officers-table", "Alice").await;
    let (weak, reached) = weak_focus_rings(&admin, 30).await;
    assert!(
        reached >= 10,
        "only {reached} tab stops reached in the admin console"
    );
    assert!(
        weak.is_empty(),
        "admin console: weak focus rings:\n  {}",
        weak.join("\n  ")
    );

    login_officer(&alice, &app, "alice").await;
    wait_rows(&alice, "#queue", 1).await;
    let (weak, reached) = weak_focus_rings(&alice, 20).await;
    assert!(
        reached >= 6,
        "only {reached} tab stops reached in the officer console"
    );
    assert!(
        weak.is_empty(),
        "officer console: weak focus rings:\n  {}",
        weak.join("\n  ")
    );
    for b in [admin, alice] {
        b.close().await.expect("close browser");
    }
}
