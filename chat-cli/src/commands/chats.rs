//! `chats [OFFICER] [--status open|resolved|all]`: an officer's chats, newest activity
//! first.

use anyhow::Context;

use crate::backend::Backend;
use crate::cli::ChatsArgs;
use crate::output::Printer;

pub(crate) async fn run(
    backend: &Backend,
    printer: Printer,
    args: ChatsArgs,
) -> anyhow::Result<()> {
    let chats = backend
        .officer_chats(args.officer.as_deref(), args.status.into())
        .await
        .with_context(|| match &args.officer {
            Some(o) => format!("listing the chats of officer {o}"),
            None => "listing your chats".to_string(),
        })?;
    printer.chats(&chats)?;
    Ok(())
}
