//! `webhook add | list | remove | deliveries | retry`: the admin's webhooks, on a local
//! database (as the administrator) or a running server (with the admin token). The
//! command's grammar is here with it, so that `cli.rs` only names it. A secret is read
//! from standard input (`--secret-stdin`), never from argv, or generated and printed
//! once.

use std::io::BufRead;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::backend::{Backend, DeliveryFilter};
use crate::output::{Printer, table};

/// `webhook ...`
#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Add a webhook: every event its filter takes is POSTed to URL, signed (the secret
    /// is printed once; with --secret-stdin, the first line of standard input).
    Add(AddArgs),
    /// List the webhooks with their pending and dead deliveries (never a secret).
    List,
    /// Remove a webhook and its deliveries. Exit 3 webhook_not_found.
    Remove(IdArg),
    /// List pending (or --dead) deliveries with a record (chat changes, failed
    /// messages), in the order of their records; `webhook list` counts every pending
    /// event.
    Deliveries(DeliveriesArgs),
    /// Make dead deliveries pending again, due now, with a fresh retry period: all, one
    /// webhook's (--webhook) or one (--delivery). Prints how many.
    Retry(RetryArgs),
}

/// `webhook add`
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// Where to POST events (http:// or https://).
    pub(crate) url: String,
    /// Events it receives, comma-separated: chat_updated, new_message (default: both).
    #[arg(long, value_delimiter = ',')]
    pub(crate) events: Vec<String>,
    /// Read the secret from the first line of standard input (else one is generated).
    #[arg(long)]
    pub(crate) secret_stdin: bool,
}

/// A webhook's id.
#[derive(Debug, Args)]
pub(crate) struct IdArg {
    /// The webhook's id (`webhook list`).
    pub(crate) id: String,
}

/// `webhook deliveries`: those with a record of their own (chat changes, messages whose
/// delivery failed); `webhook list` counts every event pending, messages not attempted
/// yet included.
#[derive(Debug, Args)]
pub(crate) struct DeliveriesArgs {
    /// Dead deliveries (retried for the whole retry period) instead of pending ones.
    #[arg(long)]
    pub(crate) dead: bool,
    /// Only this webhook's.
    #[arg(long)]
    pub(crate) webhook: Option<String>,
    /// Only deliveries with a greater id (to page on).
    #[arg(long)]
    pub(crate) after: Option<i64>,
    /// At most this many (1-1000, default 100).
    #[arg(long)]
    pub(crate) limit: Option<u32>,
}

/// `webhook retry`
#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    /// Only this webhook's dead deliveries.
    #[arg(long)]
    pub(crate) webhook: Option<String>,
    /// Only this delivery (exit 3 when it is not dead).
    #[arg(long)]
    pub(crate) delivery: Option<i64>,
}

pub(crate) async fn run(
    backend: &Backend,
    printer: Printer,
    cmd: WebhookCommand,
) -> anyhow::Result<()> {
    match cmd {
        WebhookCommand::Add(args) => {
            let secret = if args.secret_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the secret from standard input")?;
                Some(line.trim_end_matches(['\n', '\r']).to_string())
            } else {
                None
            };
            let events = (!args.events.is_empty()).then_some(args.events);
            let created = backend
                .create_webhook(&args.url, secret, events)
                .await
                .context("adding a webhook")?;
            printer.either(&created, || {
                format!(
                    "added webhook {} for {} ({})\nsecret: {}",
                    created.webhook.id,
                    created.webhook.url,
                    created.webhook.events.join(", "),
                    created.secret
                )
            })?;
        }
        WebhookCommand::List => {
            let hooks = backend.webhooks().await.context("listing webhooks")?;
            printer.either(&hooks, || {
                let rows = hooks
                    .iter()
                    .map(|w| {
                        vec![
                            w.id.clone(),
                            w.pending.to_string(),
                            w.dead.to_string(),
                            w.events.join(","),
                            w.url.clone(),
                        ]
                    })
                    .collect();
                table(&["ID", "PENDING", "DEAD", "EVENTS", "URL"], rows)
            })?;
        }
        WebhookCommand::Remove(args) => {
            backend
                .delete_webhook(&args.id)
                .await
                .with_context(|| format!("removing webhook {}", args.id))?;
            let done = serde_json::json!({ "removed": args.id });
            printer.either(&done, || format!("removed webhook {}", args.id))?;
        }
        WebhookCommand::Deliveries(args) => {
            let filter = DeliveryFilter {
                dead: args.dead,
                webhook: args.webhook,
                after: args.after,
                limit: args.limit,
            };
            let deliveries = backend
                .webhook_deliveries(&filter)
                .await
                .context("listing webhook deliveries")?;
            printer.either(&deliveries, || {
                let rows = deliveries
                    .iter()
                    .map(|d| {
                        vec![
                            d.id.to_string(),
                            d.webhook_id.clone(),
                            d.kind.clone(),
                            d.chat_id.clone(),
                            d.attempts.to_string(),
                            d.last_error.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(
                    &["ID", "WEBHOOK", "TYPE", "CHAT", "ATTEMPTS", "LAST ERROR"],
                    rows,
                )
            })?;
        }
        WebhookCommand::Retry(args) => {
            let retried = backend
                .retry_webhook_deliveries(args.webhook.as_deref(), args.delivery)
                .await
                .context("retrying dead webhook deliveries")?;
            let done = serde_json::json!({ "retried": retried });
            printer.either(&done, || format!("{retried} dead deliveries retried"))?;
        }
    }
    Ok(())
}
