//! `customer login ID` (or `customer login --identity-token JWT`): start or resume a
//! customer's chat and print it with the customer's token (remote: the token is also
//! saved for the server, so that `send` and `watch chat` work as that customer right
//! after).

use anyhow::Context;

use crate::backend::Backend;
use crate::cli::{CustomerCommand, CustomerLoginArgs};
use crate::output::{Printer, facts};
use crate::session;

pub(crate) async fn run(
    backend: &Backend,
    printer: Printer,
    cmd: CustomerCommand,
) -> anyhow::Result<()> {
    match cmd {
        CustomerCommand::Login(args) => login(backend, printer, args).await,
        CustomerCommand::Chats(args) => {
            let chats = backend
                .customer_chats(args.id.as_deref())
                .await
                .with_context(|| match &args.id {
                    Some(c) => format!("listing the chats of customer {c}"),
                    None => "listing your chats".to_string(),
                })?;
            Ok(printer.chats(&chats)?)
        }
    }
}

async fn login(backend: &Backend, printer: Printer, args: CustomerLoginArgs) -> anyhow::Result<()> {
    let login = match (args.identity_token, args.id) {
        (Some(token), _) => backend
            .customer_login_with_identity(&token)
            .await
            .context("logging in with the identity token")?,
        (None, Some(id)) => backend
            .customer_login(&id, args.officer, args.signature)
            .await
            .with_context(|| format!("logging in customer {id}"))?,
        // clap requires one of them.
        (None, None) => anyhow::bail!("a customer id or --identity-token is required"),
    };
    let mut saved_in = None;
    if let Backend::Remote(remote) = backend {
        let path = session::save(
            remote.base(),
            session::Saved {
                token: login.token.clone(),
                role: "customer".to_string(),
                subject: login.chat.customer_id.to_string(),
            },
        )
        .context("saving the token")?;
        saved_in = Some(path);
    }
    printer.either(&login, || {
        let chat = &login.chat;
        let mut rows = vec![
            ("chat", chat.id.to_string()),
            ("customer", chat.customer_id.to_string()),
            (
                "name",
                chat.customer_name
                    .clone()
                    .unwrap_or_else(|| "-".to_string()),
            ),
            ("status", chat.status.as_str().to_string()),
            (
                "officer",
                chat.assigned_officer_id
                    .as_ref()
                    .map_or_else(|| "-".to_string(), ToString::to_string),
            ),
            (
                "new chat",
                if login.created { "yes" } else { "no" }.to_string(),
            ),
            ("token", login.token.clone()),
        ];
        if let Some(path) = &saved_in {
            rows.push(("saved in", path.display().to_string()));
        }
        facts(&rows)
    })?;
    Ok(())
}
