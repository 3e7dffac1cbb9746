//! `chat-bench`: the load generator of the workspace. It drives a running chat-http
//! server over the wire contract (real HTTP and WebSocket clients on tokio), one scenario
//! per subcommand, and prints a table per scenario (or one JSON document with `--json`).
//! It starts no server unless asked (`--spawn`), so it can be pointed at any deployment.
//! It must not reach into the server's internals: everything goes over the contract,
//! except `gen-db`, which writes a database file for a server to serve.
//!
//! # Layout
//!
//! - `cli`: the clap struct (target options, one subcommand per scenario).
//! - `target`: the server under test (a URL, or a spawned chat-http process).
//! - `api`: what the scenarios need beyond `chat_client` (the REST and WebSocket client
//!   of the contract): the bench's officers and customers, answers counted by status,
//!   timed GETs with the server's `Server-Timing`.
//! - `stats`: latency histograms; `report`: tables and JSON; `mem`: a process's RSS.
//! - `scenarios/`: `sends`, `fanout`, `idle`, `read`, `claims`, `desk` (a day at the desk:
//!   officers serving arriving customers), `attack` (`slowloris`, `read-flood`), and
//!   `all`.
//! - `gendb`: the large-database generator.
//! - `reportscale`: the desk report's query at scale (fills a store, times the report).
//!
//! Exit codes: 0 every correctness check passed, 1 a check failed, 2 usage error, 3 the
//! run could not start (server unreachable, missing secret, ...). Speed never fails a run.

mod api;
mod cli;
mod gendb;
mod mem;
mod report;
mod reportscale;
mod scenarios;
mod stats;
mod target;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::report::Report;
use crate::target::Target;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Thousands of sockets need file descriptors: raise the soft limit to the hard one.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("chat-bench: could not raise the open-file limit: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chat-bench: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let report = match runtime.block_on(run(&cli)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("chat-bench: {e:#}");
            return ExitCode::from(3);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = if cli.json {
        writeln!(out, "{:#}", report.to_json())
    } else {
        write!(out, "{}", report.render())
    };
    let _ = out.flush();
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn run(cli: &Cli) -> anyhow::Result<Report> {
    if let Command::GenDb(args) = &cli.command {
        let scenario = gendb::run(args).await?;
        return Ok(Report {
            server: "(none: gen-db writes a file)".into(),
            spawned: false,
            scenarios: vec![scenario],
        });
    }
    if let Command::ReportScale(args) = &cli.command {
        let scenario = reportscale::run(args).await?;
        return Ok(Report {
            server: "(none: report-scale calls the engine)".into(),
            spawned: false,
            scenarios: vec![scenario],
        });
    }
    let target = Target::start(&cli.target).await?;
    let scenarios = scenarios::run(&target, &cli.command).await;
    let report = Report {
        server: target.api.base().to_string(),
        spawned: target.spawned(),
        scenarios,
    };
    tokio::task::spawn_blocking(move || target.stop()).await?;
    Ok(report)
}
