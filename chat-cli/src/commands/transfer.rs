//! `transfer CHAT OFFICER`: hand an assigned chat to another officer (its officer or the
//! admin). An unknown officer is `officer_not_found` (exit 3); a transfer to the chat's
//! own officer succeeds and changes nothing.

use anyhow::Context;

use crate::backend::Backend;
use crate::cli::TransferArgs;
use crate::output::{Printer, chat_named, officer_of};

pub(crate) async fn run(
    backend: &Backend,
    printer: Printer,
    args: TransferArgs,
) -> anyhow::Result<()> {
    let chat = backend
        .transfer(&args.chat, &args.officer)
        .await
        .with_context(|| {
            format!(
                "transferring chat {} to officer {}",
                args.chat, args.officer
            )
        })?;
    printer.either(&chat, || {
        format!(
            "transferred {} to officer {}",
            chat_named(&chat),
            officer_of(&chat)
        )
    })?;
    Ok(())
}
