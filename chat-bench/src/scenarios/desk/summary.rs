//! The desk scenario's report: its latency rows, the checks judged on every chat's
//! ledger and on what the officers and monitors saw, and the run's figures in notes and
//! in the JSON document. It only judges and formats what the run collected.

use std::collections::{BTreeSet, HashMap};

use serde_json::json;

use super::customer::Visit;
use super::ledger::{CapacityTracker, QueueLog, Verdict, queue_fanout};
use super::officer::OfficerReport;
use super::{Ctx, Figures};
use crate::mem;
use crate::report::{Cell, Scenario, latency_cells};
use crate::stats::Latencies;

/// Failures shown per check.
const EXAMPLES: usize = 5;

pub(super) fn report(
    scenario: &mut Scenario,
    ctx: &Ctx,
    nodes: usize,
    officer_ids: &[String],
    figures: Figures,
    visits: &[Visit],
    mut officers: Vec<OfficerReport>,
) {
    let customers = ctx.ledgers.len();
    let mut login = Latencies::new();
    let (mut assigned, mut at_login, mut later) =
        (Latencies::new(), Latencies::new(), Latencies::new());
    let (mut to_customer, mut to_officer, mut sends, mut claims) = (
        Latencies::new(),
        Latencies::new(),
        Latencies::new(),
        Latencies::new(),
    );
    let (mut gaps, mut duplicates, mut positions, mut stale) = (0, 0, 0, 0);
    for visit in visits {
        if let Some(l) = visit.login {
            login.record(l);
        }
        if let Some((l, in_login)) = visit.assigned {
            assigned.record(l);
            if in_login { &mut at_login } else { &mut later }.record(l);
        }
        visit
            .to_customer
            .iter()
            .for_each(|l| to_customer.record(*l));
        visit.sends.iter().for_each(|l| sends.record(*l));
        gaps += visit.gaps;
        duplicates += visit.duplicates;
        positions += visit.queue_positions;
        stale += u64::from(visit.answered_pending_when_assigned);
    }
    let mut own_counts = CapacityTracker::default();
    let (mut won, mut refused) = (0, HashMap::<String, u64>::new());
    let (mut away, mut disconnects, mut left_open, mut found) = (0, 0, 0, 0);
    let mut errors: Vec<String> = Vec::new();
    let mut error_count = 0;
    let mut queue_logs: Vec<QueueLog> = Vec::with_capacity(officers.len());
    for officer in &mut officers {
        to_officer.merge(&officer.to_officer);
        sends.merge(&officer.sends);
        claims.merge(&officer.claims);
        own_counts.merge(&officer.capacity);
        won += officer.claims_won;
        for (code, n) in &officer.claims_refused {
            *refused.entry(code.clone()).or_default() += n;
        }
        gaps += officer.gaps;
        duplicates += officer.duplicates;
        away += officer.times_away;
        disconnects += officer.disconnects;
        left_open += officer.left_open;
        found += officer.found_on_reconnect;
        error_count += officer.error_count;
        errors.extend(officer.errors.iter().take(EXAMPLES).cloned());
        queue_logs.push(std::mem::take(&mut officer.queue));
    }
    error_count += figures.monitor_errors.len() as u64;
    errors.extend(figures.monitor_errors.iter().cloned());

    let logins: Vec<_> = ctx
        .ledgers
        .iter()
        .map(|l| {
            let chat = l.lock();
            chat.login_start.zip(chat.login_end)
        })
        .collect();
    let fanout = queue_fanout(ctx.epoch, &logins, nodes, &queue_logs);
    drop(queue_logs);

    let mut rows: Vec<(&str, &Latencies)> = vec![
        ("customer login", &login),
        ("login -> assigned, all", &assigned),
        ("  in the login's answer", &at_login),
        ("  later (customer's socket)", &later),
        ("message customer -> officer", &to_officer),
        ("message officer -> customer", &to_customer),
        ("send (POST answered)", &sends),
        ("queue event -> each officer", &fanout.each),
        ("queue event -> last officer", &fanout.last),
    ];
    if !figures.auto {
        rows.push(("claim (POST answered)", &claims));
    }
    rows.push(("officers' list (GET, the monitor)", &figures.list_reads));
    for (figure, latencies) in rows {
        let mut cells = vec![Cell::Text(figure.to_string())];
        cells.extend(latency_cells(&latencies.summary()));
        scenario.row(cells);
    }

    // Every chat judged on its ledger.
    let verdicts: Vec<(usize, Verdict, Option<String>)> = ctx
        .ledgers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let chat = l.lock();
            (i, chat.verdict(officer_ids), chat.failure.clone())
        })
        .collect();
    let served = verdicts.iter().filter(|(_, v, _)| v.served).count();
    let unserved: Vec<String> = verdicts
        .iter()
        .filter(|(_, v, _)| !v.served)
        .take(EXAMPLES)
        .map(|(i, _, why)| {
            format!(
                "{}: {}",
                ctx.customer_id(*i),
                why.as_deref().unwrap_or("never saw the chat resolved")
            )
        })
        .collect();
    scenario.check(
        "every customer served",
        served == customers,
        if unserved.is_empty() {
            format!(
                "{served} of {customers} chats resolved by their officer, every message exchanged"
            )
        } else {
            format!("{served} of {customers} served; {}", unserved.join("; "))
        },
    );

    let twice = verdicts
        .iter()
        .filter(|(_, v, _)| v.assignment_entries > 1 || v.takers > 1)
        .count();
    let not_one: Vec<String> = verdicts
        .iter()
        .filter(|(_, v, _)| v.served && !v.one_owner)
        .take(EXAMPLES)
        .map(|(i, v, _)| {
            format!(
                "{}: {} assignment entries, {} officers took it",
                ctx.customer_id(*i),
                v.assignment_entries,
                v.takers
            )
        })
        .collect();
    let assigned_chats = verdicts.iter().filter(|(_, v, _)| v.one_owner).count();
    scenario.check(
        "every chat assigned exactly once",
        twice == 0 && not_one.is_empty(),
        if not_one.is_empty() && twice == 0 {
            format!(
                "{assigned_chats} chats, each with one assignment entry naming the one officer \
                 who took it"
            )
        } else {
            format!("{twice} assigned more than once; {}", not_one.join("; "))
        },
    );

    let acknowledged: usize = verdicts.iter().map(|(_, v, _)| v.acknowledged).sum();
    let lost: usize = verdicts.iter().map(|(_, v, _)| v.lost).sum();
    scenario.check(
        "nothing lost: every acknowledged message received by the other party, in seq order",
        lost == 0 && gaps == 0 && duplicates == 0,
        format!(
            "{acknowledged} messages acknowledged, {lost} never received by the other party; \
             {gaps} out of order or after a gap, {duplicates} repeated"
        ),
    );

    let mut capacity = figures.monitors.clone();
    capacity.merge(&own_counts);
    let limits: BTreeSet<Option<u32>> = figures.capacities.values().copied().collect();
    scenario.check(
        "no officer ever past capacity",
        capacity.violations == 0,
        if capacity.violations == 0 {
            format!(
                "{} loads seen ({} in officer_updated and the officers' list, {} officers' own \
                 counts), at most {} open chats on one officer, capacity {}; at capacity {} times",
                capacity.observations,
                figures.monitors.observations,
                own_counts.observations,
                capacity.peak_open,
                describe(&limits),
                capacity.at_capacity
            )
        } else {
            format!(
                "{} of {} loads past capacity: {}",
                capacity.violations,
                capacity.observations,
                capacity.examples.join("; ")
            )
        },
    );

    scenario.check(
        "every queue event reached every officer in the room on its node",
        fanout.missing == 0 && fanout.duplicates == 0,
        format!(
            "{} of {} owed receipts arrived ({} repeated); {} chats' events reached every \
             officer in the room on the login's node{}",
            fanout.owed - fanout.missing,
            fanout.owed,
            fanout.duplicates,
            fanout.complete,
            if nodes > 1 {
                format!(
                    "; {} receipts on another node (delivered there only while the chat was \
                     still pending)",
                    fanout.remote
                )
            } else {
                String::new()
            }
        ),
    );

    let (slots_free, slots_detail) = match &figures.still_open {
        Ok(open) if open.is_empty() && left_open == 0 => (
            true,
            format!("{} officers, none holding an open chat", officer_ids.len()),
        ),
        Ok(open) => (
            false,
            format!(
                "server: {:?}; officers' own count: {left_open} chats still open",
                open.iter().take(EXAMPLES).collect::<Vec<_>>()
            ),
        ),
        Err(e) => (false, format!("the officers' list could not be read: {e}")),
    };
    scenario.check("every slot free at the end", slots_free, slots_detail);

    let odd_claims: u64 = refused
        .iter()
        .filter(|(code, _)| !matches!(code.as_str(), "already_assigned" | "chat_resolved"))
        .map(|(_, n)| n)
        .sum();
    scenario.check(
        "no unexpected refusal, frame or closed socket",
        error_count == 0 && odd_claims == 0,
        if error_count == 0 && odd_claims == 0 {
            "none".to_string()
        } else {
            format!(
                "{error_count} errors, claims refused by code {refused:?}; {}",
                errors
                    .iter()
                    .take(EXAMPLES)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
    );

    let counts = Counts {
        customers,
        served,
        assigned_at_login: at_login.summary().count,
        won,
        refused,
        away,
        disconnects,
        found_on_reconnect: found,
        positions,
        stale,
        capacity,
        limits,
    };
    notes(scenario, ctx, &figures, &counts);
}

/// The run's counts, for the notes and the JSON document.
struct Counts {
    customers: usize,
    served: usize,
    assigned_at_login: u64,
    won: u64,
    refused: HashMap<String, u64>,
    away: u64,
    disconnects: u64,
    found_on_reconnect: u64,
    positions: u64,
    /// Chats answered pending by a login that came after their assignment was stored.
    stale: u64,
    capacity: CapacityTracker,
    limits: BTreeSet<Option<u32>>,
}

/// The capacities in force, in words.
fn describe(limits: &BTreeSet<Option<u32>>) -> String {
    match limits.iter().collect::<Vec<_>>().as_slice() {
        [] => "none (no officers)".into(),
        [None] => "unlimited".into(),
        [Some(c)] => c.to_string(),
        _ => format!("{limits:?}"),
    }
}

fn notes(scenario: &mut Scenario, ctx: &Ctx, figures: &Figures, counts: &Counts) {
    let Counts {
        customers,
        served,
        assigned_at_login,
        won,
        ref refused,
        away,
        disconnects,
        found_on_reconnect,
        positions,
        stale,
        ref capacity,
        ref limits,
    } = *counts;
    let args = &ctx.args;
    let mode = if figures.auto { "auto" } else { "manual" };
    let rate = customers as f64 / figures.arrivals.as_secs_f64().max(1e-9);
    scenario.note(format!(
        "assignment {mode}; {} officers (capacity {}; {} of them came and went: away {away} \
         times, socket dropped {disconnects} times); {customers} customers arrived over \
         {:.1} s ({rate:.1}/s), all gone after {:.1} s; {}-{} messages each way, {:?}-{:?} to \
         think",
        args.officers,
        describe(limits),
        figures.churning,
        figures.arrivals.as_secs_f64(),
        figures.served_in.as_secs_f64(),
        args.messages.min,
        args.messages.max,
        args.think.min,
        args.think.max,
    ));
    if figures.auto {
        scenario.note(format!(
            "{assigned_at_login} of {served} served chats were assigned in the login's answer; \
             of the others, {stale} were answered pending although their assignment's entry \
             was stored (by its createdAt) before the answer arrived; {positions} \
             queue_position frames reached customers"
        ));
    } else {
        let lost: u64 = refused.get("already_assigned").copied().unwrap_or(0);
        scenario.note(format!(
            "claims: {won} won, {lost} lost races (409 already_assigned), other refusals \
             {:?}; reaction {:?}-{:?}; {positions} queue_position frames reached customers",
            refused
                .iter()
                .filter(|(c, _)| c.as_str() != "already_assigned")
                .collect::<HashMap<_, _>>(),
            args.reaction.min,
            args.reaction.max
        ));
    }
    scenario.note(format!(
        "at most {} open chats on one officer; officers seen exactly at capacity {} times; \
         {found_on_reconnect} chats given to an officer while their socket was closed (found \
         by reading their open chats when it opened again)",
        capacity.peak_open, capacity.at_capacity
    ));
    let mib =
        |kib: Option<u64>| kib.map_or("?".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
    let span = figures.served_in.as_secs_f64().max(1e-9);
    let bench_cores = figures
        .bench_ticks
        .map(|t| t as f64 / mem::TICKS_PER_SECOND as f64 / span);
    match &figures.server {
        Some(usage) => scenario.note(format!(
            "server process: {} cores on average while customers came and went; RSS {} MiB \
             at the start, {} MiB at the peak, {} MiB at the end; the bench itself: {} cores",
            usage.cores.map_or("?".into(), |c| format!("{c:.2}")),
            mib(usage.rss_start_kib),
            mib(usage.rss_peak_kib),
            mib(usage.rss_end_kib),
            bench_cores.map_or("?".into(), |c| format!("{c:.2}")),
        )),
        None => scenario.note(
            "the server's CPU and memory are not shown: its process is not known \
             (--server-pid or --spawn)",
        ),
    }
    scenario.note(
        "client-side latencies; login -> assigned runs from the start of the login request to \
         its answer when it was assigned already, else to the customer socket's receipt of \
         the assignment's entry; a message is timed from the start of its POST to its receipt \
         on the other party's socket, only when sent after that socket joined the chat \
         (messages replayed by a join or a rejoin are checked, not timed); a queue event is \
         timed from the start of the login that created the chat, 'last officer' until the \
         last officer in officers:all had it (with several nodes, another node's officers \
         get it only while the chat is still pending)",
    );
    let extra = &mut scenario.extra;
    extra.insert("assignment".into(), json!(mode));
    extra.insert("officers".into(), json!(args.officers));
    extra.insert("customers".into(), json!(customers));
    extra.insert("served".into(), json!(served));
    extra.insert("capacity".into(), json!(describe(limits)));
    extra.insert(
        "arrivalsSeconds".into(),
        json!(figures.arrivals.as_secs_f64()),
    );
    extra.insert(
        "servedInSeconds".into(),
        json!(figures.served_in.as_secs_f64()),
    );
    extra.insert("arrivalsPerSecond".into(), json!(rate));
    extra.insert("assignedInLogin".into(), json!(assigned_at_login));
    extra.insert("answeredPendingWhenAssigned".into(), json!(stale));
    extra.insert("claimsWon".into(), json!(won));
    extra.insert("claimsRefused".into(), json!(refused));
    extra.insert("timesAway".into(), json!(away));
    extra.insert("disconnects".into(), json!(disconnects));
    extra.insert("foundOnReconnect".into(), json!(found_on_reconnect));
    extra.insert("peakOpenChats".into(), json!(capacity.peak_open));
    if let Some(usage) = &figures.server {
        extra.insert("serverCores".into(), json!(usage.cores));
        extra.insert("serverRssStartKiB".into(), json!(usage.rss_start_kib));
        extra.insert("serverRssPeakKiB".into(), json!(usage.rss_peak_kib));
        extra.insert("serverRssEndKiB".into(), json!(usage.rss_end_kib));
    }
    extra.insert("benchCores".into(), json!(bench_cores));
}
