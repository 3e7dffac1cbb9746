//! `download ATTACHMENT [-o FILE]`: save an attachment's file, streamed to disk (never
//! held whole), checked against its SHA-256, with progress on stderr for large files. A
//! name from the server is made safe again before it names a file here, and an
//! existing file is never replaced unless asked.

use std::path::PathBuf;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::backend::Backend;
use crate::cli::DownloadArgs;
use crate::error::{ApiError, ExitKind};
use crate::files::Progress;
use crate::output::Printer;

/// What `download` reports.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    attachment_id: String,
    name: String,
    content_type: Option<String>,
    size: u64,
    sha256: String,
    /// Where it was written (`-`: stdout).
    path: String,
}

pub(crate) async fn run(
    backend: &Backend,
    printer: Printer,
    args: DownloadArgs,
) -> anyhow::Result<()> {
    let mut incoming = backend
        .download(&args.attachment)
        .await
        .with_context(|| format!("downloading attachment {}", args.attachment))?;
    let to_stdout = args.output.as_deref() == Some(std::path::Path::new("-"));
    let path = match &args.output {
        Some(path) => path.clone(),
        // The server's name, made safe again: no path, no control characters.
        None => PathBuf::from(chatcore::files::clean_name(&incoming.name).map_err(|_| {
            ApiError::usage(format!(
                "the attachment's name {:?} cannot name a file here: give -o FILE",
                incoming.name
            ))
        })?),
    };
    let mut progress = Progress::new("downloading", &incoming.name, incoming.size);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let part = path.with_extension(format!(
        "{}part",
        path.extension()
            .map(|e| format!("{}.", e.to_string_lossy()))
            .unwrap_or_default()
    ));
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = if to_stdout {
        Box::new(tokio::io::stdout())
    } else {
        if path.exists() && !args.force {
            return Err(ApiError::new(
                ExitKind::Usage,
                "file_exists",
                format!(
                    "{} exists; give --force to replace it, or -o another file",
                    path.display()
                ),
            )
            .into());
        }
        Box::new(
            tokio::fs::File::create(&part)
                .await
                .with_context(|| format!("creating {}", part.display()))?,
        )
    };
    while let Some(chunk) = incoming.body.next().await {
        let chunk = chunk.context("reading the attachment from the server")?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        out.write_all(&chunk).await.context("writing the file")?;
        progress.advance(chunk.len() as u64);
    }
    out.flush().await.context("writing the file")?;
    drop(out);
    progress.finish();
    let sha256 = hex::encode(hasher.finalize());
    if let Some(expected) = &incoming.sha256
        && *expected != sha256
    {
        if !to_stdout {
            let _ = tokio::fs::remove_file(&part).await;
        }
        bail!(
            "the bytes received do not match the attachment's SHA-256 ({expected}); nothing saved"
        );
    }
    if !to_stdout {
        tokio::fs::rename(&part, &path)
            .await
            .with_context(|| format!("saving {}", path.display()))?;
    }
    let saved = Saved {
        attachment_id: args.attachment.clone(),
        name: incoming.name.clone(),
        content_type: incoming.content_type.clone(),
        size,
        sha256,
        path: if to_stdout {
            "-".to_string()
        } else {
            path.display().to_string()
        },
    };
    // With the file on stdout, the report goes to stderr.
    if to_stdout {
        eprintln!("saved {} ({} bytes) to stdout", saved.name, saved.size);
        return Ok(());
    }
    printer.either(&saved, || {
        format!(
            "saved {} ({} bytes) to {}",
            saved.name, saved.size, saved.path
        )
    })?;
    Ok(())
}
