//! Printing results: aligned tables and short lines for people, or exactly one JSON
//! document per result (`--json`) in the contract's shapes; errors on stderr in either
//! form. Nothing here decides what to print, only how.

use std::io::{self, Write};

use chatcore::{Chat, Message, Officer, SenderType};
use serde::Serialize;

use crate::error::ApiError;

/// Where results go, and in which form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    pub(crate) json: bool,
}

impl Printer {
    /// One JSON document on its own line.
    pub(crate) fn json<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<()> {
        let text = serde_json::to_string(value).map_err(io::Error::other)?;
        self.line(&text)
    }

    /// One line of text, flushed at once (watchers and pipes see it immediately).
    pub(crate) fn line(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()
    }

    /// The value as JSON with `--json`, else the human text `human` makes.
    pub(crate) fn either<T: Serialize + ?Sized>(
        &self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> io::Result<()> {
        if self.json {
            self.json(value)
        } else {
            let text = human();
            let mut out = io::stdout().lock();
            write!(out, "{text}")?;
            if !text.ends_with('\n') {
                writeln!(out)?;
            }
            out.flush()
        }
    }

    pub(crate) fn officers(&self, officers: &[Officer]) -> io::Result<()> {
        self.either(officers, || {
            table(
                &["ID", "DISPLAY NAME", "CREATED", "STATE", "PRESENCE", "LOAD"],
                officers
                    .iter()
                    .map(|o| {
                        vec![
                            o.id.to_string(),
                            o.display_name.clone().unwrap_or_default(),
                            o.created_at.to_string(),
                            if o.disabled {
                                "disabled"
                            } else {
                                o.availability.as_str()
                            }
                            .to_string(),
                            if o.connected { "online" } else { "offline" }.to_string(),
                            load(o),
                        ]
                    })
                    .collect(),
            )
        })
    }

    pub(crate) fn chats(&self, chats: &[Chat]) -> io::Result<()> {
        self.either(chats, || {
            if chats.is_empty() {
                return "(no chats)".to_string();
            }
            table(
                &["CHAT", "CUSTOMER", "STATUS", "OFFICER", "CREATED"],
                chats.iter().map(chat_row).collect(),
            )
        })
    }

    pub(crate) fn messages(&self, messages: &[Message]) -> io::Result<()> {
        self.either(messages, || {
            if messages.is_empty() {
                return "(no messages)".to_string();
            }
            table(
                &["SEQ", "TIME", "FROM", "TEXT"],
                messages
                    .iter()
                    .map(|m| {
                        vec![
                            m.seq.to_string(),
                            m.created_at.to_string(),
                            sender(m),
                            text_of(m),
                        ]
                    })
                    .collect(),
            )
        })
    }
}

/// One line for a message, as `watch chat` shows it. A system entry (a change of the
/// chat's state) is its sentence, marked `[system]`:
/// `#3 <time> [system] Alice transferred the chat to Bob`.
pub(crate) fn message_line(m: &Message) -> String {
    let content = text_of(m);
    match m.sender_type {
        SenderType::System => format!("#{} {} [system] {content}", m.seq, m.created_at),
        _ => format!("#{} {} {}: {content}", m.seq, m.created_at, sender(m)),
    }
}

/// A message's text on one line; an attachment is its name, type, size and id:
/// `[file payslip.pdf, application/pdf, 52341 bytes, id 0193...]`.
fn text_of(m: &Message) -> String {
    match &m.attachment {
        Some(file) => format!(
            "[file {}, {}, {} bytes, id {}]",
            file.name, file.content_type, file.size, file.id
        ),
        None => m.content.replace('\n', " "),
    }
}

/// Who wrote a message, for people: `customer:ID`, `officer:ID`, or `[system]` for a
/// system entry, whose sentence already names who made the change.
fn sender(m: &Message) -> String {
    match m.sender_type {
        SenderType::System => "[system]".to_string(),
        _ => format!("{}:{}", m.sender_type.as_str(), m.sender_id),
    }
}

/// A chat named for people in a one-line answer: `chat ID (customer ID)`.
pub(crate) fn chat_named(c: &Chat) -> String {
    format!("chat {} (customer {})", c.id, c.customer_id)
}

/// The chat's officer (for a resolved chat, its last one), or `-`.
pub(crate) fn officer_of(c: &Chat) -> &str {
    c.assigned_officer_id.as_ref().map_or("-", |o| o.as_str())
}

fn chat_row(c: &Chat) -> Vec<String> {
    vec![
        c.id.to_string(),
        c.customer_id.to_string(),
        c.status.as_str().to_string(),
        officer_of(c).to_string(),
        c.created_at.to_string(),
    ]
}

/// `key  value` lines with the values aligned: a list of facts, no header.
pub(crate) fn facts(rows: &[(&str, String)]) -> String {
    let rows = rows
        .iter()
        .map(|(k, v)| vec![(*k).to_string(), v.clone()])
        .collect();
    table(&["", ""], rows)
        .split_once('\n')
        .map_or_else(String::new, |(_, rest)| rest.to_string())
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Reports on stderr something that went wrong without failing the command:
/// `warning: message`, in both output modes (stdout keeps the result).
pub(crate) fn warning(message: &str) {
    let _ = writeln!(io::stderr().lock(), "warning: {message}");
}

/// Reports a failure on stderr: `error: code: message` plus context lines, or with
/// `--json` the contract's error object.
pub(crate) fn error(json: bool, err: &ApiError, context: &[String]) {
    let mut stderr = io::stderr().lock();
    if json {
        let body = serde_json::json!({
            "error": { "code": err.code, "message": err.message }
        });
        let _ = writeln!(stderr, "{body}");
    } else {
        let _ = writeln!(stderr, "error: {err}");
        for line in context {
            let _ = writeln!(stderr, "  while {line}");
        }
    }
}

/// An officer's open chats against their capacity: "2 of 5", or "2" when unlimited.
fn load(officer: &Officer) -> String {
    match officer.capacity {
        Some(capacity) => format!("{} of {capacity}", officer.open_chats),
        None => officer.open_chats.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["A", "BB"],
            vec![
                vec!["long".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
        );
        assert_eq!(t, "A     BB\nlong  x\ns     y\n");
    }

    #[test]
    fn system_entries_read_as_their_sentence() {
        let mut m = Message {
            id: chatcore::MessageId::new(),
            chat_id: chatcore::ChatId::new(),
            seq: 3,
            sender_type: SenderType::System,
            sender_id: "alice".into(),
            content: "Alice transferred the chat to Bob".into(),
            created_at: chatcore::Timestamp::from_unix_millis(0),
            client_message_id: None,
            event: None,
            attachment: None,
        };
        assert_eq!(
            message_line(&m),
            "#3 1970-01-01T00:00:00.000Z [system] Alice transferred the chat to Bob"
        );
        m.sender_type = SenderType::Officer;
        m.content = "Hi\nthere".into();
        assert_eq!(
            message_line(&m),
            "#3 1970-01-01T00:00:00.000Z officer:alice: Hi there"
        );
    }
}
