//! Command dispatch: pick the backend from the global flags, then run one command module.
//! Each command is written once against [`Backend`]; only `watch` (WebSocket) and the
//! saving of tokens are remote-specific.

mod attach;
mod chats;
mod claim;
mod customer;
mod download;
mod logout;
mod messages;
mod officer;
mod queue;
mod release;
mod reopen;
mod resolve;
mod send;
mod status;
mod transfer;
mod watch;
pub(crate) mod webhook;
mod whoami;

use anyhow::Context;

use crate::backend::{Backend, Local, LocalActor, Remote};
use crate::cli::{Cli, Command, Global};
use crate::error::ApiError;
use crate::output::{self, Printer};
use crate::session;

/// Runs the parsed command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let printer = Printer {
        json: cli.global.json,
    };
    let backend = open_backend(&cli.global).await?;
    let result = match cli.command {
        Command::Officer(cmd) => officer::run(&backend, printer, cmd).await,
        Command::Customer(cmd) => customer::run(&backend, printer, cmd).await,
        Command::Queue => queue::run(&backend, printer).await,
        Command::Chats(args) => chats::run(&backend, printer, args).await,
        Command::Claim(args) => claim::run(&backend, printer, args).await,
        Command::Send(args) => send::run(&backend, printer, args).await,
        Command::Resolve(args) => resolve::run(&backend, printer, args).await,
        Command::Release(args) => release::run(&backend, printer, args).await,
        Command::Transfer(args) => transfer::run(&backend, printer, args).await,
        Command::Reopen(args) => reopen::run(&backend, printer, args).await,
        Command::Messages(args) => messages::run(&backend, printer, args).await,
        Command::Attach(args) => attach::run(&backend, printer, args).await,
        Command::Download(args) => download::run(&backend, printer, args).await,
        Command::Watch(cmd) => watch::run(&backend, printer, cmd).await,
        Command::Status => status::run(&backend, printer).await,
        Command::Whoami => whoami::run(&backend, printer).await,
        Command::Logout => logout::run(&backend, printer).await,
        Command::Webhook(cmd) => webhook::run(&backend, printer, cmd).await,
    };
    let closed = backend.close().await.map(|warning| {
        if let Some(warning) = warning {
            output::warning(&warning);
        }
    });
    result.and(closed)
}

/// `--db` and `--database-url` give the local backend, `--server` the remote one
/// (`cli::parse` leaves at most one of them).
async fn open_backend(global: &Global) -> anyhow::Result<Backend> {
    let local_actor = || match &global.as_actor {
        Some(s) => LocalActor::parse(s),
        None => Ok(LocalActor::Admin),
    };
    match (&global.db, &global.database_url, &global.server) {
        (Some(path), _, _) => Ok(Backend::Local(Local::open_sqlite(
            path,
            global.attachments_dir.as_deref(),
            local_actor()?,
        )?)),
        (None, Some(url), _) => Ok(Backend::Local(
            Local::open_postgres(url, local_actor()?).await?,
        )),
        (None, None, Some(server)) => {
            if global.as_actor.is_some() {
                return Err(ApiError::usage(
                    "--as is for local mode (--db, --database-url); with --server the token \
                     says who you are",
                )
                .into());
            }
            let (token, identity) = match &global.token {
                Some(token) => (Some(token.clone()), None),
                None => match session::load(server).context("loading the saved token")? {
                    Some(saved) => (
                        Some(saved.token),
                        Some(chat_client::Identity {
                            role: saved.role,
                            subject: saved.subject,
                        }),
                    ),
                    None => (None, None),
                },
            };
            Ok(Backend::Remote(Remote::new(
                server,
                token,
                identity,
                global.ca.as_deref(),
            )?))
        }
        (None, None, None) => Err(ApiError::usage(
            "choose where to work: --db PATH (or CHAT_DB) for a local database, \
             --database-url URL (or CHAT_DATABASE_URL) for a PostgreSQL database, \
             --server URL (or CHAT_SERVER) for a running chat-http",
        )
        .into()),
    }
}
