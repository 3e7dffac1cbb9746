//! `whoami`: who the CLI acts as. Remote: the server's answer for the token
//! (`GET /api/me`), not the saved login's note of it. Local: the `--as` identity, as the
//! engine sees it.

use anyhow::Context;

use crate::backend::Backend;
use crate::output::{Printer, facts};

pub(crate) async fn run(backend: &Backend, printer: Printer) -> anyhow::Result<()> {
    let me = backend.me().await.context("asking who this is")?;
    printer.either(&me, || {
        let mut rows = vec![("role", me.role.clone()), ("subject", me.subject.clone())];
        if let Some(name) = me.officer.as_ref().and_then(|o| o.display_name.clone()) {
            rows.push(("display name", name));
        }
        facts(&rows)
    })?;
    Ok(())
}
