//! `release CHAT`: put an assigned chat back in the queue, at its place by creation time
//! (its officer or the admin). A pending chat is `not_assigned`, a resolved one
//! `chat_resolved` (both exit 4).

use anyhow::Context;

use crate::backend::Backend;
use crate::cli::ChatArg;
use crate::output::{Printer, chat_named};

pub(crate) async fn run(backend: &Backend, printer: Printer, args: ChatArg) -> anyhow::Result<()> {
    let chat = backend
        .release(&args.chat)
        .await
        .with_context(|| format!("releasing chat {}", args.chat))?;
    printer.either(&chat, || {
        format!("released {} back to the queue", chat_named(&chat))
    })?;
    Ok(())
}
