//! `reopen CHAT [--for OFFICER]`: open a resolved chat again, assigned to the acting
//! officer or, for the admin, to the officer named. A chat that is not resolved is
//! `not_resolved`, and one whose customer has started another chat since is
//! `customer_has_open_chat` (both exit 4).

use anyhow::Context;

use crate::backend::Backend;
use crate::cli::ReopenArgs;
use crate::output::{Printer, chat_named, officer_of};

pub(crate) async fn run(
    backend: &Backend,
    printer: Printer,
    args: ReopenArgs,
) -> anyhow::Result<()> {
    let chat = backend
        .reopen(&args.chat, args.for_officer.as_deref())
        .await
        .with_context(|| format!("reopening chat {}", args.chat))?;
    printer.either(&chat, || {
        format!(
            "reopened {} for officer {}",
            chat_named(&chat),
            officer_of(&chat)
        )
    })?;
    Ok(())
}
