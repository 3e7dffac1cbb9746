//! `claim CHAT`: take a pending chat for the acting officer. Losing a race to another
//! officer is a conflict (exit 4); claiming a chat one already owns succeeds.

use anyhow::Context;

use crate::backend::Backend;
use crate::cli::ClaimArgs;
use crate::output::Printer;

pub(crate) async fn run(
    backend: &Backend,
    printer: Printer,
    args: ClaimArgs,
) -> anyhow::Result<()> {
    let chat = backend
        .claim(&args.chat)
        .await
        .with_context(|| format!("claiming chat {}", args.chat))?;
    printer.either(&chat, || {
        format!(
            "claimed chat {} (customer {}) for officer {}",
            chat.id,
            chat.customer_id,
            chat.assigned_officer_id
                .as_ref()
                .map_or("-", |o| o.as_str())
        )
    })?;
    Ok(())
}
