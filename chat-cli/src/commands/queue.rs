//! `queue`: the pending chats, oldest first.

use anyhow::Context;

use crate::backend::Backend;
use crate::output::Printer;

pub(crate) async fn run(backend: &Backend, printer: Printer) -> anyhow::Result<()> {
    let chats = backend.queue().await.context("reading the queue")?;
    printer.chats(&chats)?;
    Ok(())
}
