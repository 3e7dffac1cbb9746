//! `messages CHAT`: one page of a chat's messages, ascending by seq.

use anyhow::Context;

use crate::backend::{Backend, Page};
use crate::cli::MessagesArgs;
use crate::output::Printer;

pub(crate) async fn run(
    backend: &Backend,
    printer: Printer,
    args: MessagesArgs,
) -> anyhow::Result<()> {
    let page = Page {
        after: args.after,
        before: args.before,
        limit: args.limit,
    };
    let messages = backend
        .messages(&args.chat, page)
        .await
        .with_context(|| format!("reading the messages of chat {}", args.chat))?;
    printer.messages(&messages)?;
    Ok(())
}
