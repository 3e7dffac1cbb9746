//! `logout`: revoke the token saved for `--server` on the server (`POST /api/logout`:
//! its WebSockets close with 4401 on every node), then forget it. A token the server no
//! longer knows (expired, revoked) is forgotten all the same; a server that cannot be
//! reached keeps the token saved, so that the logout can be run again.

use crate::backend::Backend;
use crate::error::ApiError;
use crate::output::Printer;
use crate::session;

pub(crate) async fn run(backend: &Backend, printer: Printer) -> anyhow::Result<()> {
    let Backend::Remote(remote) = backend else {
        return Err(ApiError::usage("logout forgets a saved token: it needs --server").into());
    };
    let revoked = match remote.client().token() {
        None => false,
        Some(_) => match remote.logout().await {
            Ok(()) => true,
            // Already unknown to the server: nothing left to revoke.
            Err(e) if e.code == "unauthorized" => false,
            Err(e) => return Err(e.into()),
        },
    };
    let removed = session::remove(remote.base())?;
    printer.either(
        &serde_json::json!({ "removed": removed, "revoked": revoked }),
        || match (revoked, removed) {
            (true, true) => format!("revoked and forgot the token saved for {}", remote.base()),
            (true, false) => format!("revoked the token on {}", remote.base()),
            (false, true) => format!("forgot the token saved for {}", remote.base()),
            (false, false) => format!("no token was saved for {}", remote.base()),
        },
    )?;
    Ok(())
}
