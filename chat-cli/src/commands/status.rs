//! `status`: remote, the server's health and who the token is; local (SQLite or
//! PostgreSQL), whether the store answers, its schema version and counts.

use anyhow::Context;

use crate::backend::Backend;
use crate::output::{Printer, facts};

pub(crate) async fn run(backend: &Backend, printer: Printer) -> anyhow::Result<()> {
    let status = backend.status().await.context("checking status")?;
    printer.either(&status, || {
        let mut rows = vec![("mode", status.mode.to_string())];
        let optional = [
            ("db", status.db.clone()),
            ("postgres", status.postgres.clone()),
            ("server", status.server.clone()),
            ("health", Some(status.health.to_string())),
            (
                "schema version",
                status.schema_version.map(|v| v.to_string()),
            ),
            ("officers", status.officers.map(|v| v.to_string())),
            ("pending chats", status.pending_chats.map(|v| v.to_string())),
            (
                "assigned chats",
                status.assigned_chats.map(|v| v.to_string()),
            ),
        ];
        rows.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        let acting = match (&status.role, &status.subject) {
            (Some(role), Some(subject)) if role == subject => role.clone(),
            (Some(role), Some(subject)) => format!("{role} {subject}"),
            _ => "nobody (no token)".to_string(),
        };
        rows.push(("acting as", acting));
        facts(&rows)
    })?;
    Ok(())
}
