//! `officer add | list | login | disable | enable`. Passwords come from a terminal prompt or the first line
//! of standard input, never from argv (where `ps` and shell history would show them).

use std::io::{BufRead, IsTerminal};

use anyhow::Context;

use crate::backend::Backend;
use crate::cli::{OfficerAddArgs, OfficerCommand, OfficerLoginArgs, PasswordSource};
use crate::error::{ApiError, ExitKind};
use crate::output::Printer;
use crate::session;

pub(crate) async fn run(
    backend: &Backend,
    printer: Printer,
    cmd: OfficerCommand,
) -> anyhow::Result<()> {
    match cmd {
        OfficerCommand::Add(args) => add(backend, printer, args).await,
        OfficerCommand::List => {
            let officers = backend.officers().await.context("listing officers")?;
            printer.officers(&officers)?;
            Ok(())
        }
        OfficerCommand::Login(args) => login(backend, printer, args).await,
        OfficerCommand::Disable(args) => switch(backend, printer, &args.id, true).await,
        OfficerCommand::Availability(args) => {
            let officer = backend
                .set_availability(args.officer.as_deref(), args.availability.into())
                .await
                .context("setting the availability")?;
            printer.either(&officer, || {
                format!(
                    "officer {} is {}",
                    officer.id,
                    officer.availability.as_str()
                )
            })?;
            Ok(())
        }
        OfficerCommand::Capacity(args) => {
            let officer = backend
                .set_capacity(&args.id, args.capacity.0)
                .await
                .with_context(|| format!("setting the capacity of officer {}", args.id))?;
            printer.either(&officer, || match officer.capacity {
                Some(n) => format!("officer {} may hold {n} open chats", officer.id),
                None => format!("officer {} may hold any number of open chats", officer.id),
            })?;
            Ok(())
        }
        OfficerCommand::Enable(args) => switch(backend, printer, &args.id, false).await,
    }
}

async fn switch(
    backend: &Backend,
    printer: Printer,
    id: &str,
    disable: bool,
) -> anyhow::Result<()> {
    let verb = if disable { "disabling" } else { "enabling" };
    let officer = backend
        .set_officer_disabled(id, disable)
        .await
        .with_context(|| format!("{verb} officer {id}"))?;
    printer.either(&officer, || {
        if officer.disabled {
            format!("disabled officer {} (sessions revoked)", officer.id)
        } else {
            format!("enabled officer {}", officer.id)
        }
    })?;
    Ok(())
}

async fn add(backend: &Backend, printer: Printer, args: OfficerAddArgs) -> anyhow::Result<()> {
    let password = match read_password(&args.password, &args.id, true)? {
        Some(p) => Some(p),
        None if args.password.no_password => None,
        None => {
            return Err(ApiError::new(
                ExitKind::Invalid,
                "invalid_field",
                "password: empty; use --no-password for an officer without one",
            )
            .into());
        }
    };
    let officer = backend
        .create_officer(&args.id, password, args.display_name)
        .await
        .with_context(|| format!("creating officer {}", args.id))?;
    printer.either(&officer, || match &officer.display_name {
        Some(name) => format!("created officer {} ({name})", officer.id),
        None => format!("created officer {}", officer.id),
    })?;
    Ok(())
}

async fn login(backend: &Backend, printer: Printer, args: OfficerLoginArgs) -> anyhow::Result<()> {
    let password = read_password(&args.password, &args.id, false)?;
    let login = backend
        .officer_login(&args.id, password)
        .await
        .with_context(|| format!("logging in officer {}", args.id))?;
    match backend {
        Backend::Remote(remote) => {
            let path = session::save(
                remote.base(),
                session::Saved {
                    token: login.token.clone(),
                    role: "officer".to_string(),
                    subject: login.officer.id.to_string(),
                },
            )
            .context("saving the token")?;
            printer.either(&login, || {
                format!(
                    "logged in as officer {} on {}; token saved in {}",
                    login.officer.id,
                    remote.base(),
                    path.display()
                )
            })?;
        }
        // Local mode saves nothing: the token is for handing to a client of a server on
        // the same database.
        Backend::Local(_) => printer.either(&login, || login.token.clone())?,
    }
    Ok(())
}

/// The password `source` names. `None` with --no-password; for a login, an empty answer
/// also means none (an officer without a password on an open-mode server).
fn read_password(
    source: &PasswordSource,
    officer: &str,
    confirm: bool,
) -> anyhow::Result<Option<String>> {
    if source.no_password {
        return Ok(None);
    }
    let password = if source.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(ApiError::usage(
                "no terminal to ask for the password: use --password-stdin or --no-password",
            )
            .into());
        }
        let prompt = format!("password for officer {officer}: ");
        let password = rpassword::prompt_password(prompt).context("reading the password")?;
        if confirm {
            let again = rpassword::prompt_password("again: ").context("reading the password")?;
            if again != password {
                return Err(ApiError::new(
                    ExitKind::Invalid,
                    "password_mismatch",
                    "the two passwords differ",
                )
                .into());
            }
        }
        password
    };
    Ok((!password.is_empty()).then_some(password))
}
