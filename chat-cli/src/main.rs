//! chat-cli: parse the command line, run the command, turn the outcome into an exit
//! code. Everything else lives in the modules below; this file holds no command logic.
//!
//! Layout: `cli` (clap structs), `commands` (one module per command), `backend` (local
//! over chatcore, remote through chat-client), `session` (saved tokens),
//! `output` (tables and JSON), `error` (the typed error and the exit-code mapping).

mod backend;
mod cli;
mod commands;
mod error;
mod files;
mod output;
mod session;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::parse();
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`chat-cli watch chat X | head -1`) is how a reader says it has
        // had enough: not a failure.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let (api, context) = error::classify(&err);
            output::error(json, &api, &context);
            ExitCode::from(api.kind.code() as u8)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
