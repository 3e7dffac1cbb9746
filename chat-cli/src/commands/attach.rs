//! `attach CHAT FILE`: send a file as an attachment, streamed from disk (never read
//! whole), with progress on stderr for large files. A repeated `--client-id` returns the
//! original message.

use anyhow::Context;

use crate::backend::{Backend, Outgoing};
use crate::cli::AttachArgs;
use crate::files::{Progress, file_stream};
use crate::output::Printer;

pub(crate) async fn run(
    backend: &Backend,
    printer: Printer,
    args: AttachArgs,
) -> anyhow::Result<()> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{} names no file", args.file.display()))?,
    };
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("opening {}", args.file.display()))?;
    let length = file
        .metadata()
        .await
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    let progress = Progress::new("uploading", &name, Some(length));
    let outgoing = Outgoing {
        name,
        content_type: args.content_type,
        length,
        body: file_stream(file, progress),
        client_id: args.client_id,
    };
    let sent = backend
        .attach(&args.chat, outgoing)
        .await
        .with_context(|| format!("attaching {} to chat {}", args.file.display(), args.chat))?;
    let m = &sent.message;
    printer.either(m, || {
        let file = m.attachment.as_ref();
        let what = file.map_or_else(String::new, |f| {
            format!(
                "{} ({}, {} bytes, attachment {})",
                f.name, f.content_type, f.size, f.id
            )
        });
        if sent.created {
            format!("sent #{} to chat {}: {what}", m.seq, m.chat_id)
        } else {
            format!(
                "already sent as #{} in chat {} (same client id); nothing stored twice: {what}",
                m.seq, m.chat_id
            )
        }
    })?;
    Ok(())
}
