//! `claims`: officers racing for the same pending chats through the API. Every officer
//! tries every chat, all in the same order and at once, so each chat is contested by all
//! of them. Exactly one claim per chat may win (200); the rest must be 409. Then the
//! chats are read back through each officer's list: each chat belongs to exactly one
//! officer, the one whose claim won.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chat_client::Client;
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::sync::Barrier;

use crate::api::{self, Api, run_id};
use crate::cli::ClaimsArgs;
use crate::report::{Cell, LATENCY_COLUMNS, Scenario, latency_cells};
use crate::stats::Latencies;
use crate::target::Target;

pub(crate) async fn run(target: &Target, args: &ClaimsArgs) -> Scenario {
    let mut columns = vec![
        ("officers", "officers"),
        ("chats", "chats"),
        ("attempts", "attempts"),
        ("won", "won"),
        ("lost", "lost (409)"),
        ("attemptsPerSecond", "attempts/s"),
    ];
    columns.extend(LATENCY_COLUMNS);
    let mut scenario = Scenario::new(
        "claims",
        "claim races: POST /api/officers/{id}/claim/{chat}, one winner per chat",
        &columns,
    );
    if let Err(e) = race(&target.api, args, &mut scenario).await {
        scenario.check("run", false, format!("{e:#}"));
    }
    scenario
}

struct Officer {
    id: String,
    /// The officer, on a connection of their own.
    client: Client,
}

async fn race(api: &Api, args: &ClaimsArgs, scenario: &mut Scenario) -> anyhow::Result<()> {
    let run = run_id();
    // Officer creation hashes a password on the server (argon2): a few at a time.
    let officers: Vec<Officer> = stream::iter(0..args.officers.max(1))
        .map(|i| {
            let api = api.own_connection();
            let id = format!("bench-{run}-co{i}");
            async move {
                let client = api?.new_officer(&id).await?;
                anyhow::Ok(Officer { id, client })
            }
        })
        .buffered(4)
        .try_collect()
        .await?;
    let chats: Arc<Vec<String>> = Arc::new(
        stream::iter(0..args.chats.max(1))
            .map(|i| {
                let api = api.clone();
                let customer = format!("bench-{run}-cc{i}");
                async move {
                    let login = api.customer_login(&customer, None).await?;
                    anyhow::Ok(login.chat.id.to_string())
                }
            })
            .buffered(32)
            .try_collect()
            .await?,
    );

    let barrier = Arc::new(Barrier::new(officers.len()));
    let started = Instant::now();
    let tasks: Vec<_> = officers
        .iter()
        .map(|officer| {
            let (client, id) = (officer.client.clone(), officer.id.clone());
            let (chats, barrier) = (chats.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut latencies = Latencies::new();
                let mut outcomes = Vec::with_capacity(chats.len());
                for chat in chats.iter() {
                    let start = Instant::now();
                    let status = match api::claim(&client, &id, chat).await {
                        Ok((status, _)) => status,
                        Err(_) => 0,
                    };
                    latencies.record(start.elapsed());
                    outcomes.push(status);
                }
                (latencies, outcomes)
            })
        })
        .collect();
    let mut latencies = Latencies::new();
    let mut winners: Vec<Vec<usize>> = vec![Vec::new(); chats.len()];
    let (mut won, mut lost, mut other) = (0u64, 0u64, HashMap::<u16, u64>::new());
    for (o, task) in tasks.into_iter().enumerate() {
        let (l, outcomes) = task.await?;
        latencies.merge(&l);
        for (c, status) in outcomes.into_iter().enumerate() {
            match status {
                200 => {
                    won += 1;
                    winners[c].push(o);
                }
                409 => lost += 1,
                s => *other.entry(s).or_default() += 1,
            }
        }
    }
    let elapsed = started.elapsed();
    let attempts = won + lost + other.values().sum::<u64>();

    let mut cells = vec![
        Cell::Int(officers.len() as u64),
        Cell::Int(chats.len() as u64),
        Cell::Int(attempts),
        Cell::Int(won),
        Cell::Int(lost),
        Cell::Num(attempts as f64 / elapsed.as_secs_f64().max(1e-9), 0),
    ];
    cells.extend(latency_cells(&latencies.summary()));
    scenario.row(cells);

    let not_one: Vec<String> = winners
        .iter()
        .enumerate()
        .filter(|(_, w)| w.len() != 1)
        .map(|(c, w)| format!("chat {} had {} winners", chats[c], w.len()))
        .take(5)
        .collect();
    scenario.check(
        "exactly one winning claim per chat",
        not_one.is_empty(),
        if not_one.is_empty() {
            format!("{} chats, {won} wins", chats.len())
        } else {
            not_one.join("; ")
        },
    );
    scenario.check(
        "every losing claim is 409",
        other.is_empty(),
        format!("other answers by status (0 = no answer): {other:?}"),
    );

    // Read back: each chat as its winner sees it (only its owner may read an assigned
    // chat, so a 200 naming the winner proves the ownership).
    let mut wrong = Vec::new();
    for (c, winner) in winners.iter().enumerate() {
        let [o] = winner.as_slice() else { continue };
        let officer = &officers[*o];
        let owner = match officer.client.chat(&chats[c]).await {
            Ok(chat) => chat.assigned_officer_id.map(|o| o.as_str().to_string()),
            Err(e) => Some(format!("unreadable ({e:#})")),
        };
        if owner.as_deref() != Some(officer.id.as_str()) {
            wrong.push(format!(
                "chat {}: won by {}, owned by {owner:?}",
                chats[c], officer.id
            ));
        }
    }
    scenario.check(
        "read back: each chat belongs to its winner",
        wrong.is_empty(),
        if wrong.is_empty() {
            format!("{} chats read back", chats.len())
        } else {
            wrong.into_iter().take(5).collect::<Vec<_>>().join("; ")
        },
    );
    scenario.note(
        "every officer tries every chat in the same order, all starting together; attempts/s \
         counts wins and losses alike",
    );
    Ok(())
}
