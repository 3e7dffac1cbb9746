//! `logout`: forget the token saved for `--server` (the token itself stays valid on the
//! server until it expires: contract v1 has no logout endpoint).

use crate::backend::Backend;
use crate::error::ApiError;
use crate::output::Printer;
use crate::session;

pub(crate) async fn run(backend: &Backend, printer: Printer) -> anyhow::Result<()> {
    let Backend::Remote(remote) = backend else {
        return Err(ApiError::usage("logout forgets a saved token: it needs --server").into());
    };
    let removed = session::remove(remote.base())?;
    printer.either(&serde_json::json!({ "removed": removed }), || {
        if removed {
            format!("forgot the token saved for {}", remote.base())
        } else {
            format!("no token was saved for {}", remote.base())
        }
    })?;
    Ok(())
}
