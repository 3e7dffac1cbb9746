//! `send CHAT TEXT`: send a message as the acting customer or officer; `-` reads the text
//! from standard input. A repeated `--client-id` returns the original message.

use std::io::Read;

use anyhow::Context;

use crate::backend::Backend;
use crate::cli::SendArgs;
use crate::output::Printer;

pub(crate) async fn run(backend: &Backend, printer: Printer, args: SendArgs) -> anyhow::Result<()> {
    let text = if args.text == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the message from standard input")?;
        // The newline that ends the last line of input is not part of the message.
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        text
    } else {
        args.text
    };
    let sent = backend
        .send(&args.chat, text, args.client_id)
        .await
        .with_context(|| format!("sending to chat {}", args.chat))?;
    let m = &sent.message;
    printer.either(m, || {
        if sent.created {
            format!("sent #{} to chat {}", m.seq, m.chat_id)
        } else {
            format!(
                "already sent as #{} in chat {} (same client id); nothing stored twice",
                m.seq, m.chat_id
            )
        }
    })?;
    Ok(())
}
