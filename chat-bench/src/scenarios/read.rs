//! `read`: the read paths whose cost must not grow with the data: a page of a chat's
//! history (at a random depth), the queue, and an officer's chats. Requests go one at a
//! time on one connection. Latency is measured client-side over loopback, an upper bound
//! of the server's own time; when the server sends `Server-Timing` (chat-http
//! `--server-timing`), its figure is reported beside. Every answer is checked: pages
//! hold exactly the asked seqs, the queue only pending chats oldest first, the officer's
//! list only their open chats, newest activity first.

use anyhow::{Context, bail};
use chat_client::Client;
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use crate::api::{self, Api, Timed, run_id, timed_get};
use crate::cli::ReadArgs;
use crate::report::{Cell, Scenario};
use crate::stats::Latencies;
use crate::target::Target;

pub(crate) async fn run(target: &Target, args: &ReadArgs) -> Scenario {
    let columns = [
        ("endpoint", "endpoint"),
        ("items", "items"),
        ("bytes", "bytes"),
        ("clientP50Ms", "client p50"),
        ("clientP99Ms", "client p99"),
        ("clientMaxMs", "client max"),
        ("serverP50Ms", "server p50"),
        ("serverP99Ms", "server p99"),
        ("serverMaxMs", "server max"),
        ("samples", "samples"),
    ];
    let mut scenario = Scenario::new(
        "read",
        "read paths: a history page, the queue, an officer's chats (ms)",
        &columns,
    );
    let setup = match target.api.own_connection() {
        Err(e) => Err(e),
        Ok(api) => match &args.dataset {
            Some(prefix) => dataset(&api, prefix, &args.dataset_password).await,
            None => fresh(&api, args).await,
        },
    };
    match setup {
        Ok(setup) => {
            if let Err(e) = measure(args, &setup, &mut scenario).await {
                scenario.check("run", false, format!("{e:#}"));
            }
        }
        Err(e) => scenario.check("setup", false, format!("{e:#}")),
    }
    scenario
}

/// What is read.
struct Setup {
    officer: String,
    /// The officer, on the scenario's own connection.
    client: Client,
    chat: String,
    /// Messages in `chat`.
    history: u64,
    /// Chats the officer must have, when known.
    officer_chats: Option<usize>,
}

/// Fresh data: an officer, a chat assigned to them with `history` messages, and more
/// chats assigned to them.
async fn fresh(api: &Api, args: &ReadArgs) -> anyhow::Result<Setup> {
    let run = run_id();
    let officer = format!("bench-{run}-ro");
    let client = api.new_officer(&officer).await?;
    let customer = api
        .customer_login(&format!("bench-{run}-rc0"), Some(&officer))
        .await?;
    let chat = customer.chat.id.to_string();
    let sender = api.as_user(&customer.token);
    for i in 0..args.history {
        let (status, _) = api::send(
            &sender,
            &chat,
            &format!("history message {i}, long enough to look like a real sentence"),
            &format!("h-{i}"),
        )
        .await?;
        if status != 201 {
            bail!("writing the history: a send answered {status}");
        }
    }
    let extra = args.officer_chats.saturating_sub(1);
    stream::iter(1..=extra)
        .map(|i| {
            let (api, officer) = (api.clone(), officer.clone());
            let customer = format!("bench-{run}-rc{i}");
            async move {
                api.customer_login(&customer, Some(&officer))
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(Setup {
        officer,
        client,
        chat,
        history: args.history as u64,
        officer_chats: Some(extra + 1),
    })
}

/// A `gen-db` database: officer PREFIX-o0 and the large chat of customer PREFIX-c0.
async fn dataset(api: &Api, prefix: &str, password: &str) -> anyhow::Result<Setup> {
    let officer = format!("{prefix}-o0");
    let client = api
        .officer_login(&officer, password)
        .await
        .with_context(|| format!("logging in as the dataset's officer {officer}"))?;
    let customer = api
        .customer_login(&format!("{prefix}-c0"), None)
        .await
        .context("logging in as the dataset's customer")?;
    let owner = customer.chat.assigned_officer_id.as_ref();
    if owner.map(|o| o.as_str()) != Some(officer.as_str()) {
        bail!("the dataset's large chat is not assigned to {officer}: is this a gen-db database?");
    }
    let chat = customer.chat.id.to_string();
    let history = client.last_seq(&chat).await?;
    Ok(Setup {
        officer,
        client,
        chat,
        history,
        officer_chats: None,
    })
}

#[derive(Default)]
struct Endpoint {
    client: Option<Latencies>,
    server: Option<Latencies>,
    without_timing: u64,
    items: u64,
    bytes: u64,
    answers: u64,
    problems: Vec<String>,
}

impl Endpoint {
    fn record(&mut self, timed: &Timed) {
        self.client
            .get_or_insert_with(Latencies::new)
            .record(timed.elapsed);
        match timed.server_ms {
            Some(ms) => self
                .server
                .get_or_insert_with(Latencies::new)
                .record_millis(ms),
            None => self.without_timing += 1,
        }
        self.answers += 1;
        self.bytes += timed.bytes as u64;
        self.items += timed.body.as_array().map_or(0, Vec::len) as u64;
    }

    fn problem(&mut self, problem: String) {
        if self.problems.len() < 5 {
            self.problems.push(problem);
        }
    }
}

async fn measure(args: &ReadArgs, setup: &Setup, scenario: &mut Scenario) -> anyhow::Result<()> {
    let page = args.page_size.clamp(1, 1000) as u64;
    if setup.history < page {
        bail!(
            "the chat has {} messages, fewer than a page of {page}",
            setup.history
        );
    }
    let queue_path = "/api/officers/queue".to_string();
    let officer_path = format!("/api/officers/{}/chats", setup.officer);
    let (mut pages, mut queue, mut officer) = (
        Endpoint::default(),
        Endpoint::default(),
        Endpoint::default(),
    );
    // A first round is not counted: it opens the connection and warms caches.
    for round in 0..=args.requests {
        let after = rand::random_range(0..=setup.history - page);
        let path = format!(
            "/api/chats/{}/messages?after={after}&limit={page}",
            setup.chat
        );
        let timed = timed_get(&setup.client, &path).await?;
        if let Some(problem) = check_page(&timed, after, page) {
            pages.problem(problem);
        }
        if round > 0 {
            pages.record(&timed);
        }

        let timed = timed_get(&setup.client, &queue_path).await?;
        if let Some(problem) = check_chats(&timed, None) {
            queue.problem(problem);
        }
        if round > 0 {
            queue.record(&timed);
        }

        let timed = timed_get(&setup.client, &officer_path).await?;
        if let Some(problem) = check_chats(&timed, Some(&setup.officer)) {
            officer.problem(problem);
        } else if let Some(expected) = setup.officer_chats {
            let got = timed.body.as_array().map_or(0, Vec::len);
            if got != expected {
                officer.problem(format!("{got} chats, expected {expected}"));
            }
        }
        if round > 0 {
            officer.record(&timed);
        }
    }
    let mut without_timing = 0;
    for (name, endpoint) in [
        (
            format!("history page ({page} of {})", setup.history),
            &pages,
        ),
        ("queue".to_string(), &queue),
        ("officer's chats".to_string(), &officer),
    ] {
        let client = endpoint
            .client
            .clone()
            .unwrap_or_else(Latencies::new)
            .summary();
        let server = endpoint.server.as_ref().map(Latencies::summary);
        let answers = endpoint.answers.max(1);
        let server_cell = |f: fn(&crate::stats::Summary) -> f64| match &server {
            Some(s) => Cell::Num(f(s), 3),
            None => Cell::Text("-".into()),
        };
        scenario.row(vec![
            Cell::Text(name.clone()),
            Cell::Int(endpoint.items / answers),
            Cell::Int(endpoint.bytes / answers),
            Cell::Num(client.p50_ms, 3),
            Cell::Num(client.p99_ms, 3),
            Cell::Num(client.max_ms, 3),
            server_cell(|s| s.p50_ms),
            server_cell(|s| s.p99_ms),
            server_cell(|s| s.max_ms),
            Cell::Int(client.count),
        ]);
        scenario.check(
            format!("{name}: every answer right"),
            endpoint.problems.is_empty(),
            if endpoint.problems.is_empty() {
                format!("{} answers checked", endpoint.answers)
            } else {
                endpoint.problems.join("; ")
            },
        );
        without_timing += endpoint.without_timing;
    }
    scenario.note(
        "client-side latency over loopback includes the client's own work and is an upper \
         bound of the server's; server = the server's Server-Timing (request in to response \
         body ready)",
    );
    if without_timing > 0 {
        scenario.note(format!(
            "{without_timing} answers had no Server-Timing header: start chat-http with \
             --server-timing (CHAT_SERVER_TIMING=true) for server-side figures"
        ));
    }
    Ok(())
}

/// What is wrong with a page answer for `after` and `limit`.
fn check_page(timed: &Timed, after: u64, limit: u64) -> Option<String> {
    if timed.status != 200 {
        return Some(format!("status {}", timed.status));
    }
    let Some(messages) = timed.body.as_array() else {
        return Some("not an array".into());
    };
    if messages.len() as u64 != limit {
        return Some(format!(
            "{} messages after {after}, expected {limit}",
            messages.len()
        ));
    }
    for (i, m) in messages.iter().enumerate() {
        let expected = after + 1 + i as u64;
        if m["seq"].as_u64() != Some(expected) {
            return Some(format!("seq {} where {expected} was due", m["seq"]));
        }
    }
    None
}

/// What is wrong with a list of chats: every one pending, oldest first (the queue), or
/// assigned to `officer`, newest activity first (their open chats).
fn check_chats(timed: &Timed, officer: Option<&str>) -> Option<String> {
    if timed.status != 200 {
        return Some(format!("status {}", timed.status));
    }
    let Some(chats) = timed.body.as_array() else {
        return Some("not an array".into());
    };
    // The queue by `createdAt` ascending; an officer's chats by `updatedAt` descending.
    let (field, order, wrong) = match officer {
        None => ("createdAt", std::cmp::Ordering::Greater, "not oldest first"),
        Some(_) => (
            "updatedAt",
            std::cmp::Ordering::Less,
            "not newest activity first",
        ),
    };
    let mut previous: Option<i64> = None;
    for chat in chats {
        let expected_owner = officer.map_or(Value::Null, Value::from);
        let expected_status = if officer.is_some() {
            "assigned"
        } else {
            "pending"
        };
        if chat["assignedOfficerId"] != expected_owner || chat["status"] != expected_status {
            return Some(format!("unexpected chat {chat}"));
        }
        // Parsed, not compared as text: the fraction of a second has no trailing zeros
        // (`.1Z` is later than `.05Z` but sorts after `.12Z` as text).
        let Ok(at) = serde_json::from_value::<chatcore::Timestamp>(chat[field].clone()) else {
            return Some(format!("{field} is not RFC 3339: {chat}"));
        };
        let at = at.unix_millis();
        if previous.is_some_and(|p| p.cmp(&at) == order) {
            return Some(wrong.into());
        }
        previous = Some(at);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn timed(body: Value) -> Timed {
        Timed {
            status: 200,
            elapsed: Duration::from_millis(1),
            server_ms: None,
            bytes: 0,
            body,
        }
    }

    #[test]
    fn pages_must_hold_exactly_the_asked_seqs() {
        let good = timed(json!([{"seq": 11}, {"seq": 12}]));
        assert_eq!(check_page(&good, 10, 2), None);
        assert!(check_page(&good, 9, 2).is_some());
        assert!(check_page(&good, 10, 3).is_some());
    }

    #[test]
    fn chat_lists_are_checked_for_owner_status_and_order() {
        let queue = timed(json!([
            {"assignedOfficerId": null, "status": "pending", "createdAt": "2026-01-01T00:00:00.000Z"},
            {"assignedOfficerId": null, "status": "pending", "createdAt": "2026-01-02T00:00:00.000Z"},
        ]));
        assert_eq!(check_chats(&queue, None), None);
        assert!(check_chats(&queue, Some("alice")).is_some());
        let backwards = timed(json!([
            {"assignedOfficerId": null, "status": "pending", "createdAt": "2026-01-02T00:00:00.000Z"},
            {"assignedOfficerId": null, "status": "pending", "createdAt": "2026-01-01T00:00:00.000Z"},
        ]));
        assert_eq!(
            check_chats(&backwards, None).as_deref(),
            Some("not oldest first")
        );
        let newest_first = timed(json!([
            {"assignedOfficerId": "a", "status": "assigned", "updatedAt": "2026-01-02T00:00:00.000Z"},
            {"assignedOfficerId": "a", "status": "assigned", "updatedAt": "2026-01-01T00:00:00.000Z"},
        ]));
        assert_eq!(check_chats(&newest_first, Some("a")), None);
        let disorder = timed(json!([
            {"assignedOfficerId": "a", "status": "assigned", "updatedAt": "2026-01-01T00:00:00.000Z"},
            {"assignedOfficerId": "a", "status": "assigned", "updatedAt": "2026-01-02T00:00:00.000Z"},
        ]));
        assert_eq!(
            check_chats(&disorder, Some("a")).as_deref(),
            Some("not newest activity first")
        );
    }
}
