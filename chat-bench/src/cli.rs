//! The command line: one clap struct for the target (which server, its secrets, its
//! process) and one subcommand per scenario. It only describes settings; it must not
//! connect to anything.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Load generator for chat-http: drives a running server over the wire contract
/// (docs/API.md) and prints, per scenario, latency percentiles, throughput and the
/// correctness checks it made. A failed check makes the exit code 1; a slow number never
/// does.
#[derive(Debug, Parser)]
#[command(name = "chat-bench", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) target: TargetArgs,

    /// Print one JSON document for the whole run instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Which server to drive.
#[derive(Debug, Clone, Args)]
pub(crate) struct TargetArgs {
    /// Base URL of the server to drive (ignored with --spawn).
    #[arg(
        long,
        env = "CHAT_BENCH_SERVER",
        default_value = "http://127.0.0.1:3001",
        global = true
    )]
    pub(crate) server: String,

    /// Another node of the same deployment (same database, same secrets; repeat for
    /// several): `sends` spreads its connections over all nodes, `fanout` sends
    /// through the first while its receivers are spread over all, so that events cross
    /// nodes, and `desk` spreads its officers and customers over all. Not with --spawn.
    #[arg(
        long = "also-server",
        value_name = "URL",
        global = true,
        conflicts_with = "spawn"
    )]
    pub(crate) also_servers: Vec<String>,

    /// The server's admin token, needed to create officers on a secured server.
    #[arg(long, env = "CHAT_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub(crate) admin_token: Option<String>,

    /// The server's customer secret, needed to sign customer logins on a secured server.
    #[arg(
        long,
        env = "CHAT_CUSTOMER_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub(crate) customer_secret: Option<String>,

    /// Process id of the server, for the memory figures of the `idle` scenario and the
    /// CPU and memory of `desk` (it reads /proc/PID/status and /proc/PID/stat, so the
    /// server must run on this machine).
    #[arg(long, global = true)]
    pub(crate) server_pid: Option<u32>,

    /// Start this chat-http binary for the run (on 127.0.0.1, a free port, a temporary
    /// SQLite file and random secrets) and stop it at the end.
    #[arg(long, value_name = "PATH_TO_CHAT_HTTP", global = true)]
    pub(crate) spawn: Option<PathBuf>,

    /// With --spawn: serve this database file instead of a temporary one (for example
    /// one written by `gen-db`).
    #[arg(long, value_name = "PATH", global = true, requires = "spawn")]
    pub(crate) spawn_db: Option<PathBuf>,

    /// With --spawn: one more argument for the server (repeat for several), e.g.
    /// `--server-arg=--sync-normal`.
    #[arg(
        long = "server-arg",
        value_name = "ARG",
        global = true,
        allow_hyphen_values = true,
        requires = "spawn"
    )]
    pub(crate) server_args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Durable sends: N connections each POSTing messages to its own chat as fast as
    /// the server acknowledges them; then reads every chat back.
    Sends(SendsArgs),
    /// Fan-out: one REST sender, N WebSocket receivers joined to the same chat; latency
    /// from the start of the POST to each receipt.
    Fanout(FanoutArgs),
    /// Idle WebSockets: opens authenticated, joined sockets and reports the server's
    /// memory per socket (needs --server-pid or --spawn).
    Idle(IdleArgs),
    /// Read paths: a page of history, the queue, an officer's chats (client-side and,
    /// when the server sends Server-Timing, server-side latency).
    Read(ReadArgs),
    /// Attachments: upload and download throughput (MiB/s) and latency per file size,
    /// every file checked back; then text sends' latency alone and while the largest
    /// files upload without pause (the target: p99 under 2x idle). Run the server with
    /// `--limit-uploads off --limit-sends off` (the bench's customers upload many files).
    Attachments(AttachmentsArgs),
    /// Claims: officers racing to claim the same pending chats; exactly one winner per
    /// chat, checked by reading the chats back.
    Claims(ClaimsArgs),
    /// A day at the desk: officers on WebSockets serve customers who arrive over time;
    /// each chat is assigned (by the server in automatic mode, by officers' claims in
    /// manual mode), carries a few messages each way and is resolved, while some
    /// officers come and go. Latency from login to assignment, of messages both ways and
    /// of queue events to every officer; checks that nothing is lost, that every chat is
    /// assigned once and resolved and that no officer passes capacity.
    Desk(DeskArgs),
    /// Connection attacks from a security review: `slowloris` (half-open connections
    /// from one address while other clients are timed) and `read-flood` (large pages
    /// asked for and never read, with the server's memory).
    Attack(AttackArgs),
    /// Webhooks: the `sends` load with no webhook and with one to a receiver the bench
    /// runs on 127.0.0.1 (throughput and latency of both; the bar: on within 15%
    /// of off), the time until every event arrived, and a backlog written while the
    /// receiver refuses, then drained (events delivered per second). Checks every event
    /// arrives once, in order per chat. Needs the admin token (or --spawn); run the
    /// server with `--limit-sends off` and a short `--webhook-backoff-max` (1s) so that
    /// the drain is not a backoff's wait.
    Webhooks(WebhooksArgs),
    /// Every scenario, short.
    All(AllArgs),
    /// Writes a SQLite database in the engine's schema with many chats and messages,
    /// quickly (bulk inserts), to measure read paths at scale. Starts no server.
    GenDb(GenDbArgs),
    /// The desk report at scale: fills a fresh SQLite file (or, with --database-url, an
    /// empty PostgreSQL database) with a month of chats, then times the report for a
    /// day, a week and the month. Starts no server.
    ReportScale(ReportScaleArgs),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ReportScaleArgs {
    /// Chats to load (a month at the desk).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) chats: usize,
    /// Times each report is asked for.
    #[arg(long, default_value_t = 5)]
    pub(crate) runs: usize,
    /// An empty PostgreSQL database to load instead of a SQLite file (its schema is
    /// created if missing).
    #[arg(long, env = "CHAT_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// Where the SQLite file goes (a temporary directory inside it).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Keep the SQLite file (its path is printed on stderr).
    #[arg(long)]
    pub(crate) keep: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct SendsArgs {
    /// Concurrent connections (one customer and one chat each); a list runs each in turn.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub(crate) connections: Vec<usize>,
    /// How long each level is measured.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub(crate) duration: Duration,
    /// Sends before the measurement starts, not counted.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub(crate) warmup: Duration,
    /// Characters of content per message.
    #[arg(long, default_value_t = 100)]
    pub(crate) content_chars: usize,
    /// A paced load: this many sends a second in all, spread evenly over the
    /// connections, each send's latency counted from when it was due (so that a server
    /// that falls behind is not flattered). Unset: as fast as the server acknowledges.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rate: Option<u32>,
    /// Each chat followed as at the desk: created for an officer of its own, with the
    /// customer's socket and the officer's socket joined to it, each of which must get
    /// every message once and in order. Unset: nobody follows the chats (the cheapest
    /// send there is). Needs the admin token (or --spawn).
    #[arg(long)]
    pub(crate) followers: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct WebhooksArgs {
    /// Concurrent senders (one customer and one chat each), in both `sends` phases.
    #[arg(long, default_value_t = 16)]
    pub(crate) connections: usize,
    /// How long each `sends` phase is measured.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub(crate) duration: Duration,
    /// Sends before each measurement starts, not counted.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub(crate) warmup: Duration,
    /// Characters of content per message.
    #[arg(long, default_value_t = 100)]
    pub(crate) content_chars: usize,
    /// A paced load in both phases: this many sends a second in all (see `sends
    /// --rate`), to compare latencies off and on below the server's capacity. Unset: as
    /// fast as the server acknowledges.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rate: Option<u32>,
    /// Each chat followed as at the desk, in both phases (see `sends --followers`).
    #[arg(long)]
    pub(crate) followers: bool,
    /// Rounds of an `off` phase then an `on` phase (each of `--duration`), summed: on a
    /// machine whose speed drifts, alternating short phases compares off and on over
    /// the same stretch of time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rounds: u32,
    /// Messages written while the receiver refuses, then drained.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) backlog: usize,
    /// The longest a phase's events may take to arrive.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub(crate) drain_timeout: Duration,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AttachmentsArgs {
    /// File sizes, each a phase: bytes, or with a unit (`100KiB`, `5MiB`).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "100KiB,5MiB")]
    pub(crate) sizes: Vec<usize>,
    /// Files uploaded (then downloaded) per size.
    #[arg(long, default_value_t = 40)]
    pub(crate) files: usize,
    /// Uploaders at once, each a customer with a chat of their own.
    #[arg(long, default_value_t = 4)]
    pub(crate) workers: usize,
    /// Text messages timed alone, and again while the largest files upload.
    #[arg(long, default_value_t = 200)]
    pub(crate) text_messages: usize,
    /// Pause between text sends.
    #[arg(long, value_parser = parse_duration, default_value = "20ms")]
    pub(crate) text_interval: Duration,
    /// Uploaders of the largest size while text is timed (each a customer of its own).
    #[arg(long, default_value_t = 4)]
    pub(crate) load_workers: usize,
    /// Pace of each of those uploaders, in MiB/s, as a client on a real link sends (8:
    /// a 64 Mbit/s uplink); 0 sends as fast as loopback takes it, which on a small
    /// machine measures the CPU the transfer takes from everything else.
    #[arg(long, default_value_t = 8.0)]
    pub(crate) load_mibps: f64,
}

/// A size in bytes: `1234`, `100KiB`, `5MiB`.
fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 5MiB"))?;
    let unit = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1024,
        "MiB" | "M" => 1024 * 1024,
        _ => return Err(format!("{s:?}: the unit must be KiB or MiB")),
    };
    match n.checked_mul(unit) {
        Some(size) if size >= 32 => Ok(size),
        _ => Err(format!("{s:?}: a size must be 32 bytes or more")),
    }
}

#[derive(Debug, Clone, Args)]
pub(crate) struct FanoutArgs {
    /// Receivers joined to the one chat; a list runs each in turn.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    pub(crate) receivers: Vec<usize>,
    /// Messages sent per level.
    #[arg(long, default_value_t = 200)]
    pub(crate) messages: usize,
    /// Pause between one send's answer and the next send.
    #[arg(long, value_parser = parse_duration, default_value = "20ms")]
    pub(crate) interval: Duration,
    /// How long receivers may take to get the last message before the rest count as lost.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub(crate) timeout: Duration,
    /// Typing and read traffic beside the messages, as two people in the chat make it
    /// with the pages: `typing` from the customer and the officer once a second (all the
    /// server passes on), and the officer's read mark of the latest message at most
    /// every 300 ms (the pages coalesce marks so).
    #[arg(long)]
    pub(crate) typing: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct IdleArgs {
    /// Sockets measured.
    #[arg(long, default_value_t = 15_000)]
    pub(crate) sockets: usize,
    /// Sockets opened (and kept) before the first memory reading, so one-time costs
    /// (allocator arenas, worker threads, pools) are not charged to the measured ones.
    #[arg(long, default_value_t = 500)]
    pub(crate) warmup_sockets: usize,
    /// Sockets per chat: 1 is every socket a customer in their own chat; more puts that
    /// many sockets of one customer on each chat.
    #[arg(long, default_value_t = 1)]
    pub(crate) per_chat: usize,
    /// Pause before each memory reading.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub(crate) settle: Duration,
    /// Authenticate only, join nothing (to tell the cost of a joined chat apart).
    #[arg(long)]
    pub(crate) no_join: bool,
    /// Send one message of this many characters into each chat after its sockets have
    /// joined (0: none), so that the reading covers sockets that have carried traffic
    /// (buffers a socket keeps after writing a frame count).
    #[arg(long, default_value_t = 0)]
    pub(crate) message_chars: usize,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ReadArgs {
    /// Requests per endpoint.
    #[arg(long, default_value_t = 2000)]
    pub(crate) requests: usize,
    /// Messages written to the chat whose history is paged (ignored with --dataset).
    #[arg(long, default_value_t = 1000)]
    pub(crate) history: usize,
    /// Messages per page.
    #[arg(long, default_value_t = 100)]
    pub(crate) page_size: usize,
    /// Chats assigned to the measured officer (ignored with --dataset).
    #[arg(long, default_value_t = 20)]
    pub(crate) officer_chats: usize,
    /// Read a database written by `gen-db` with this prefix instead of writing fresh
    /// data: officer PREFIX-o0 and the large chat of customer PREFIX-c0.
    #[arg(long, value_name = "PREFIX")]
    pub(crate) dataset: Option<String>,
    /// Password of the dataset's officers.
    #[arg(long, default_value = crate::gendb::DEFAULT_PASSWORD)]
    pub(crate) dataset_password: String,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ClaimsArgs {
    /// Officers racing.
    #[arg(long, default_value_t = 50)]
    pub(crate) officers: usize,
    /// Pending chats they race for (each officer tries every one).
    #[arg(long, default_value_t = 1000)]
    pub(crate) chats: usize,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct DeskArgs {
    /// Officers, each with a WebSocket joined to `officers:all` for the whole run.
    #[arg(long, default_value_t = 200)]
    pub(crate) officers: usize,
    /// Customers; each logs in once, is served and leaves (a socket only while their
    /// chat is open).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) customers: usize,
    /// Over how long the customers arrive (at random, customers/duration a second on
    /// average: a Poisson process).
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub(crate) duration: Duration,
    /// Messages each way per chat: the customer's first, each answered by the officer,
    /// then the next; drawn per chat from `MIN-MAX` (or one number).
    #[arg(long, value_parser = parse_count_range, default_value = "1-3")]
    pub(crate) messages: CountRange,
    /// Pause before each message in answer to the other side's (and before the officer
    /// resolves after their last), drawn from `MIN-MAX` (or one duration).
    #[arg(long, value_parser = parse_duration_range, default_value = "1s-3s")]
    pub(crate) think: DurationRange,
    /// How chats reach officers: `auto` (the server assigns them; officers only answer),
    /// `manual` (officers claim them from the queue), or `detect` (a probe customer
    /// logs in before the others: a chat assigned within 2 s means auto). Must match the
    /// server's `--assignment`.
    #[arg(long, value_enum, default_value_t = AssignmentMode::Detect)]
    pub(crate) assignment: AssignmentMode,
    /// Manual mode: how long an officer takes to go for a new chat in the queue (drawn
    /// per officer and chat); the first to claim wins, the others get 409.
    #[arg(long, value_parser = parse_duration_range, default_value = "100ms-1s")]
    pub(crate) reaction: DurationRange,
    /// Share of the officers who come and go: each in turn sets themselves away, or
    /// drops their WebSocket, and comes back.
    #[arg(long, default_value_t = 0.1)]
    pub(crate) churn: f64,
    /// How long a coming-and-going officer stays at the desk between absences, on
    /// average (drawn from half to one and a half times it).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub(crate) churn_every: Duration,
    /// How long an absence lasts, drawn from `MIN-MAX`.
    #[arg(long, value_parser = parse_duration_range, default_value = "5s-15s")]
    pub(crate) away_for: DurationRange,
    /// How long a customer waits, from login, for their chat to be resolved before
    /// giving up (a customer not served; they resolve the chat themselves).
    #[arg(long, value_parser = parse_duration, default_value = "2m")]
    pub(crate) patience: Duration,
    /// Characters of content per message.
    #[arg(long, default_value_t = 80)]
    pub(crate) content_chars: usize,
    /// How often the officers' list is read (as the admin) to check every officer's
    /// load against their capacity, besides the `officer_updated` events.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub(crate) poll: Duration,
}

/// How the desk scenario expects chats to reach officers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AssignmentMode {
    Auto,
    Manual,
    Detect,
}

/// A range of durations, `MIN-MAX` (a value is drawn from it each time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DurationRange {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

/// A range of counts, `MIN-MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CountRange {
    pub(crate) min: u32,
    pub(crate) max: u32,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AttackArgs {
    #[command(subcommand)]
    pub(crate) attack: Attack,
}

#[derive(Debug, Clone, Subcommand)]
pub(crate) enum Attack {
    /// From one source address, holds as many half-open connections as the server
    /// lets it (a partial request head trickled a line at a time, or idle after one
    /// request), reconnecting whenever one is closed; meanwhile clients from another
    /// address make ordinary requests, each on a new connection, and their latency and
    /// failures are recorded. On loopback, start the server with `--limit-loopback`, or
    /// the attacker's address is exempt from the per-address cap.
    Slowloris(SlowlorisArgs),
    /// Fills a chat with long messages of control characters (each escaped to 6 bytes in
    /// JSON), then opens connections that each ask for a page of all of them and never
    /// read; reports the server's peak memory and what became of the connections (needs
    /// --server-pid or --spawn, and a server with `--limit-sends off`).
    ReadFlood(ReadFloodArgs),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct SlowlorisArgs {
    /// Attacker connections to hold (each reconnects when the server closes it).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) connections: usize,
    /// Share of them that send one whole request and then stay idle; the others send a
    /// partial request head and add a header line every --trickle.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) idle_share: f64,
    /// Pause between the header lines of a partial head.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub(crate) trickle: Duration,
    /// Pause before an attacker connection that was closed (or refused) reconnects.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub(crate) retry: Duration,
    /// How long the attack runs before the clients start.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub(crate) warmup: Duration,
    /// How long the clients are measured.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub(crate) duration: Duration,
    /// Ordinary clients, each making one request at a time (`/healthz`, then a page of
    /// messages, in turn), each on a new connection.
    #[arg(long, default_value_t = 4)]
    pub(crate) clients: usize,
    /// Pause between one client's requests.
    #[arg(long, value_parser = parse_duration, default_value = "50ms")]
    pub(crate) interval: Duration,
    /// A client request not answered within this counts as failed.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub(crate) request_timeout: Duration,
    /// Source address of the attacker's connections (default 127.0.0.2 when the server
    /// is on loopback, else the system's choice).
    #[arg(long)]
    pub(crate) attacker_address: Option<IpAddr>,
    /// Source address of the clients' connections (default 127.0.0.3 when the server
    /// is on loopback, else the system's choice).
    #[arg(long)]
    pub(crate) client_address: Option<IpAddr>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ReadFloodArgs {
    /// Connections that each ask for the page and never read.
    #[arg(long, default_value_t = 100)]
    pub(crate) connections: usize,
    /// Messages in the chat (the page asks for all of them, up to 1,000).
    #[arg(long, default_value_t = 1000)]
    pub(crate) messages: usize,
    /// Characters per message, each U+0001.
    #[arg(long, default_value_t = 4000)]
    pub(crate) chars: usize,
    /// How long the connections hold without reading (longer than the server's write
    /// timeout, to see it act).
    #[arg(long, value_parser = parse_duration, default_value = "40s")]
    pub(crate) hold: Duration,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AllArgs {
    /// Sockets for the idle scenario (skipped without --server-pid or --spawn).
    #[arg(long, default_value_t = 2000)]
    pub(crate) idle_sockets: usize,
    /// Seconds measured per sends level.
    #[arg(long, value_parser = parse_duration, default_value = "3s")]
    pub(crate) sends_duration: Duration,
    /// Tiny sizes (a few connections, sockets and chats, about a second each): proves
    /// every scenario works, measures nothing worth reading (what CI runs).
    #[arg(long)]
    pub(crate) smoke: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct GenDbArgs {
    /// The database file to write (refused if it exists, unless --force).
    pub(crate) path: PathBuf,
    /// Chats (one customer each).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) chats: usize,
    /// Messages in all.
    #[arg(long, default_value_t = 10_000_000)]
    pub(crate) messages: u64,
    /// Share of the messages in one large chat (customer PREFIX-c0), to page deep
    /// history; the rest are spread evenly over the other chats.
    #[arg(long, default_value_t = 0.1)]
    pub(crate) big_chat_share: f64,
    /// Chats left pending in the queue (the newest ones).
    #[arg(long, default_value_t = 100)]
    pub(crate) pending: usize,
    /// Assigned chats per officer (officers are created to match).
    #[arg(long, default_value_t = 20)]
    pub(crate) chats_per_officer: usize,
    /// Prefix of the generated officer (PREFIX-oN) and customer (PREFIX-cN) ids.
    #[arg(long, default_value = "gen")]
    pub(crate) prefix: String,
    /// Password of every generated officer.
    #[arg(long, default_value = crate::gendb::DEFAULT_PASSWORD)]
    pub(crate) officer_password: String,
    /// Replace the file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

/// `250ms`, `10s`, `2m` or a plain number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 10s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{s:?}: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?}: {e}"))
}

/// `MIN-MAX` of [`parse_duration`]s (`1s-3s`, `100ms-1s`), or one duration.
pub(crate) fn parse_duration_range(s: &str) -> Result<DurationRange, String> {
    let (min, max) = match s.split_once('-') {
        Some((min, max)) => (parse_duration(min)?, parse_duration(max)?),
        None => (parse_duration(s)?, parse_duration(s)?),
    };
    if min > max {
        return Err(format!(
            "{s:?}: the first duration is longer than the second"
        ));
    }
    Ok(DurationRange { min, max })
}

/// `MIN-MAX` of whole numbers of at least 1 (`1-3`), or one number.
pub(crate) fn parse_count_range(s: &str) -> Result<CountRange, String> {
    let number = |n: &str| {
        n.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{s:?}: counts are whole numbers of at least 1, as 1-3"))
    };
    let (min, max) = match s.split_once('-') {
        Some((min, max)) => (number(min)?, number(max)?),
        None => (number(s)?, number(s)?),
    };
    if min > max {
        return Err(format!("{s:?}: the first number is larger than the second"));
    }
    Ok(CountRange { min, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        let ms = Duration::from_millis;
        assert_eq!(
            parse_duration_range("100ms-1s"),
            Ok(DurationRange {
                min: ms(100),
                max: ms(1000)
            })
        );
        assert_eq!(
            parse_duration_range("2s"),
            Ok(DurationRange {
                min: ms(2000),
                max: ms(2000)
            })
        );
        assert!(parse_duration_range("3s-1s").is_err());
        assert!(parse_duration_range("1s-").is_err());
        assert_eq!(parse_count_range("1-3"), Ok(CountRange { min: 1, max: 3 }));
        assert_eq!(parse_count_range("2"), Ok(CountRange { min: 2, max: 2 }));
        assert!(parse_count_range("0-2").is_err());
        assert!(parse_count_range("3-1").is_err());
    }

    #[test]
    fn desk_defaults_parse() {
        let cli = Cli::try_parse_from(["chat-bench", "desk"]).unwrap();
        let Command::Desk(args) = cli.command else {
            panic!("not desk")
        };
        assert_eq!((args.officers, args.customers), (200, 10_000));
        assert_eq!(args.assignment, AssignmentMode::Detect);
        assert_eq!(args.messages, CountRange { min: 1, max: 3 });
        let cli = Cli::try_parse_from(["chat-bench", "desk", "--assignment", "auto"]).unwrap();
        let Command::Desk(args) = cli.command else {
            panic!("not desk")
        };
        assert_eq!(args.assignment, AssignmentMode::Auto);
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn lists_and_defaults_parse() {
        let cli = Cli::try_parse_from(["chat-bench", "sends", "--connections", "2,4"]).unwrap();
        let Command::Sends(args) = cli.command else {
            panic!("not sends")
        };
        assert_eq!(args.connections, [2, 4]);
        assert_eq!(args.duration, Duration::from_secs(10));
        assert_eq!(cli.target.server, "http://127.0.0.1:3001");
    }

    #[test]
    fn also_server_adds_nodes_but_not_with_spawn() {
        let cli = Cli::try_parse_from([
            "chat-bench",
            "--also-server",
            "http://127.0.0.1:4002",
            "--also-server",
            "http://127.0.0.1:4003",
            "sends",
        ])
        .unwrap();
        assert_eq!(
            cli.target.also_servers,
            ["http://127.0.0.1:4002", "http://127.0.0.1:4003"]
        );
        assert!(
            Cli::try_parse_from([
                "chat-bench",
                "--spawn",
                "chat-http",
                "--also-server",
                "http://x",
                "sends"
            ])
            .is_err()
        );
    }

    #[test]
    fn server_args_need_spawn() {
        assert!(
            Cli::try_parse_from(["chat-bench", "--server-arg=--sync-normal", "claims"]).is_err()
        );
        let cli = Cli::try_parse_from([
            "chat-bench",
            "--spawn",
            "/bin/chat-http",
            "--server-arg=--sync-normal",
            "claims",
        ])
        .unwrap();
        assert_eq!(cli.target.server_args, ["--sync-normal"]);
    }
}
