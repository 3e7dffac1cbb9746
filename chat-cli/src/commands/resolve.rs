//! `resolve CHAT`: end a chat as the acting identity (its officer, its customer, or the
//! admin). Resolving a resolved chat succeeds and changes nothing; who may, and in which
//! state, is the engine's answer.

use anyhow::Context;

use crate::backend::Backend;
use crate::cli::ChatArg;
use crate::output::{Printer, chat_named};

pub(crate) async fn run(backend: &Backend, printer: Printer, args: ChatArg) -> anyhow::Result<()> {
    let chat = backend
        .resolve(&args.chat)
        .await
        .with_context(|| format!("resolving chat {}", args.chat))?;
    printer.either(&chat, || format!("resolved {}", chat_named(&chat)))?;
    Ok(())
}
