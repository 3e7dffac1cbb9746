//! The command line's grammar: clap structs only, no behaviour. Every flag has a doc line,
//! which clap turns into `--help`.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// The exit-code table, shown at the end of `--help` and kept in step with
/// `error::ExitKind` and the README.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  ok
  1  anything else (an internal or unexpected error, 5xx)
  2  usage: bad arguments or flags
  3  not found (404: no such chat or officer)
  4  conflict (409: e.g. a claim lost to another officer, an officer id that exists,
     a chat in the wrong state for resolve, release, transfer, reopen or send)
  5  auth (401/403: no, bad or expired token; wrong password; not allowed)
  6  server unreachable or its TLS certificate not trusted (remote), or the database
     cannot be opened (local)
  7  invalid input (400/413/415/416/422: malformed id, empty or too long message, bad
     paging, a file too large or of a type the server does not take)
  8  rate limited (429: too many failed logins or messages; wait as told, then retry)

Modes:
  --db PATH (CHAT_DB)
      Work directly on a SQLite file through chatcore, trusted, as the administrator
      unless --as names an officer or customer. Safe while a server runs on the same
      file, but events of these writes reach only this process: connected WebSocket
      clients see them on their next afterSeq rejoin or REST read, not live.
  --database-url URL (CHAT_DATABASE_URL)
      The same on the PostgreSQL database that chat-http nodes share (chat-http
      --database-url). Events of these writes reach every node: connected WebSocket
      clients see them live.
  --server URL (CHAT_SERVER)
      Talk to a running chat-http with a bearer token: --token, CHAT_TOKEN, or the one
      saved by `officer login` / `customer login` for that server. An https:// URL is
      spoken over TLS (wss:// for the WebSocket), trusting the system's CA roots plus
      --ca FILE (CHAT_CA), a PEM file of a private CA.";

/// Scriptable command line of the support chat: a SQLite file, a PostgreSQL database or a
/// chat-http server.
#[derive(Debug, Parser)]
#[command(name = "chat-cli", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The mode flags (clap ids) with how they are named to people.
const MODES: [(&str, &str); 3] = [
    ("db", "--db (CHAT_DB)"),
    ("database_url", "--database-url (CHAT_DATABASE_URL)"),
    ("server", "--server (CHAT_SERVER)"),
];

/// Parses argv, exiting with clap's usage error (code 2) when it is wrong.
///
/// `--db`, `--database-url` and `--server` exclude each other, but `chat-http` reads
/// `CHAT_DB` and `CHAT_DATABASE_URL` too, so a shell set up for the server may export
/// them: a mode given on the command line wins over those from the environment, and only
/// two of the same origin are a conflict.
pub(crate) fn parse() -> Cli {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given: Vec<(&str, &str, ValueSource)> = MODES
        .iter()
        .filter_map(|&(id, name)| Some((id, name, matches.value_source(id)?)))
        .collect();
    let on_command_line = given
        .iter()
        .any(|(_, _, source)| *source == ValueSource::CommandLine);
    let (chosen, dropped): (Vec<_>, Vec<_>) = given
        .into_iter()
        .partition(|(_, _, source)| !on_command_line || *source == ValueSource::CommandLine);
    if chosen.len() > 1 {
        let names: Vec<&str> = chosen.iter().map(|(_, name, _)| *name).collect();
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                format!("{} exclude each other: choose one", names.join(" and ")),
            )
            .exit();
    }
    for (id, _, _) in dropped {
        match id {
            "db" => cli.global.db = None,
            "database_url" => cli.global.database_url = None,
            _ => cli.global.server = None,
        }
    }
    cli
}

/// Flags valid with every command.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Work directly on this SQLite database (created if missing), as the administrator.
    #[arg(long, env = "CHAT_DB", global = true)]
    pub(crate) db: Option<PathBuf>,

    /// Work directly on this PostgreSQL database, as the administrator: the one chat-http
    /// nodes share (`postgres://user:pass@host:5432/chat` or `host=... dbname=...`).
    /// Connected clients of every node see these writes live.
    #[arg(long, env = "CHAT_DATABASE_URL", global = true, hide_env_values = true)]
    pub(crate) database_url: Option<String>,

    /// Talk to the chat-http server at this base URL (e.g. http://127.0.0.1:3001, its
    /// default address).
    #[arg(long, env = "CHAT_SERVER", global = true)]
    pub(crate) server: Option<String>,

    /// With --server https://...: also trust the CA certificates in this PEM file (a
    /// private CA that signed the server's certificate). The system's CA roots are
    /// always trusted (SSL_CERT_FILE and SSL_CERT_DIR are honoured); the server's
    /// certificate is always verified.
    #[arg(long, env = "CHAT_CA", global = true, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,

    /// Bearer token for --server; defaults to the one saved by `login` for that server.
    #[arg(long, env = "CHAT_TOKEN", global = true, hide_env_values = true)]
    pub(crate) token: Option<String>,

    /// Local mode with --db only: the directory of attachments' files, as the server's
    /// --attachments-dir (default: beside the database file, `DB-attachments`).
    #[arg(long, env = "CHAT_ATTACHMENTS_DIR", global = true, value_name = "PATH")]
    pub(crate) attachments_dir: Option<PathBuf>,

    /// Local mode only (--db, --database-url): act as `admin` (the default), `officer:ID`
    /// or `customer:ID`.
    #[arg(long = "as", value_name = "WHO", global = true)]
    pub(crate) as_actor: Option<String>,

    /// Print one JSON document per result (JSON Lines for `watch`), errors as JSON on stderr.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create, list and log in officers.
    #[command(subcommand)]
    Officer(OfficerCommand),

    /// Customer sessions.
    #[command(subcommand)]
    Customer(CustomerCommand),

    /// Pending chats, oldest first.
    Queue,

    /// An officer's chats, newest activity first: open ones (the default), resolved ones
    /// or all (remote default officer: the logged-in officer).
    Chats(ChatsArgs),

    /// Claim a pending chat (remote: as the logged-in officer; local: --as officer:ID).
    Claim(ClaimArgs),

    /// Send a message (remote: as the token's owner; local: --as officer:ID|customer:ID).
    Send(SendArgs),

    /// End a chat (its officer, its customer, or the admin).
    ///
    /// The customer may end their chat while it is pending too; an officer takes it
    /// first. Resolving a resolved chat succeeds and changes nothing. Nobody writes to a
    /// resolved chat. Prints the chat.
    ///
    /// Exit 4 not_assigned: an officer on a pending chat. Exit 5 forbidden: not the
    /// chat's officer or customer. Exit 3 chat_not_found.
    Resolve(ChatArg),

    /// Put an assigned chat back in the queue (its officer, or the admin).
    ///
    /// It goes back at its place by creation time. Prints the chat.
    ///
    /// Exit 4 not_assigned: the chat is pending; exit 4 chat_resolved: it is resolved.
    /// Exit 5 forbidden: not the chat's officer. Exit 3 chat_not_found.
    Release(ChatArg),

    /// Hand an assigned chat to another officer (its officer, or the admin).
    ///
    /// The officer must exist and be enabled. A transfer to the chat's own officer
    /// succeeds and changes nothing. Prints the chat.
    ///
    /// Exit 3 officer_not_found (or chat_not_found). Exit 4 not_assigned: the chat is
    /// pending; exit 4 chat_resolved: it is resolved. Exit 5 forbidden: not the chat's
    /// officer; exit 5 officer_disabled.
    Transfer(TransferArgs),

    /// Open a resolved chat again, assigned (an officer for themselves, the admin --for one).
    ///
    /// Prints the chat.
    ///
    /// Exit 4 not_resolved: the chat is open. Exit 4 customer_has_open_chat: its customer
    /// has started another chat since. Exit 5 forbidden: an officer reopening for someone
    /// else, or a customer. Exit 7 invalid_field: the admin without --for. Exit 3
    /// chat_not_found or officer_not_found.
    Reopen(ReopenArgs),

    /// Read a page of a chat's messages, ascending by seq.
    Messages(MessagesArgs),

    /// Send a file to a chat as an attachment (remote: as the token's owner; local: --as
    /// officer:ID|customer:ID).
    ///
    /// The server finds the type in the bytes (PNG, JPEG, WebP, PDF and plain text by
    /// default) and refuses others, a name whose extension is not the type's, and files
    /// over its limit (10 MiB by default). Progress goes to stderr for files of 1 MiB or
    /// more. Prints the stored message (with --json, its JSON with `attachment`).
    ///
    /// Exit 7 unsupported_type, attachment_too_large or invalid_parameter. Exit 5
    /// forbidden: not the chat's customer or officer. Exit 4 chat_resolved. Exit 8
    /// rate_limited.
    Attach(AttachArgs),

    /// Save an attachment's file (whoever may read its chat).
    ///
    /// Written to -o FILE, or to the attachment's name in the current directory (never
    /// over an existing file unless --force); `-o -` writes to stdout. The bytes are
    /// checked against the attachment's SHA-256. Progress goes to stderr for files of 1
    /// MiB or more.
    ///
    /// Exit 3 attachment_not_found. Exit 5 forbidden.
    Download(DownloadArgs),

    /// Stream events as they happen over the WebSocket (requires --server).
    #[command(subcommand)]
    Watch(WatchCommand),

    /// Remote: server health and who the token is. Local: store, schema version, counts.
    Status,

    /// Who you act as: remote, the server's answer for the token (`GET /api/me`); local,
    /// the --as identity (an officer must exist and be enabled). Exit 5 without a valid
    /// token.
    Whoami,

    /// Forget the token saved for --server.
    Logout,

    /// Webhooks (the admin): add, list, remove; pending and dead deliveries; retry dead
    /// ones. Remote: with the admin token (--token). Exit 3 webhook_not_found; exit 7
    /// invalid_field (a bad url, secret or event).
    #[command(subcommand)]
    Webhook(crate::commands::webhook::WebhookCommand),
}

/// `officer ...`
#[derive(Debug, Subcommand)]
pub(crate) enum OfficerCommand {
    /// Create an officer (password from a prompt, --password-stdin, or --no-password).
    Add(OfficerAddArgs),
    /// List all officers.
    List,
    /// Log an officer in (remote: saves the token for the server; local: prints it).
    Login(OfficerLoginArgs),
    /// Disable an officer (the admin): their sessions are revoked and their sockets
    /// close on every node; they cannot log in until enabled.
    Disable(OfficerIdArg),
    /// Enable a disabled officer again (the admin).
    Enable(OfficerIdArg),
    /// Set whether an officer takes chats now: `available` or `away` (the officer for
    /// themselves, remote default: the logged-in officer; the admin for anyone).
    Availability(OfficerAvailabilityArgs),
    /// Set the most open chats an officer may hold (the admin): a number, or `default`
    /// for the server's (--officer-capacity). Claims and transfers past it are refused
    /// (exit 4, at_capacity).
    Capacity(OfficerCapacityArgs),
}

/// `officer availability`
#[derive(Debug, Args)]
pub(crate) struct OfficerAvailabilityArgs {
    /// `available` or `away`.
    #[arg(value_enum)]
    pub(crate) availability: AvailabilityArg,
    /// The officer (default: the logged-in officer, or the one named by --as).
    #[arg(long)]
    pub(crate) officer: Option<String>,
}

/// `officer availability`'s value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AvailabilityArg {
    /// Taking chats.
    Available,
    /// Not taking chats for now.
    Away,
}

impl From<AvailabilityArg> for chatcore::Availability {
    fn from(a: AvailabilityArg) -> Self {
        match a {
            AvailabilityArg::Available => chatcore::Availability::Available,
            AvailabilityArg::Away => chatcore::Availability::Away,
        }
    }
}

/// `officer capacity`
#[derive(Debug, Args)]
pub(crate) struct OfficerCapacityArgs {
    /// The officer's id.
    pub(crate) id: String,
    /// A number of chats (0-10000), or `default`.
    #[arg(value_parser = parse_capacity)]
    pub(crate) capacity: Capacity,
}

/// An officer's capacity as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capacity(pub(crate) Option<u32>);

fn parse_capacity(s: &str) -> Result<Capacity, String> {
    if s == "default" {
        return Ok(Capacity(None));
    }
    s.parse::<u32>()
        .map(|n| Capacity(Some(n)))
        .map_err(|_| format!("`{s}` is neither a number of chats nor `default`"))
}

/// An officer named by id.
#[derive(Debug, Args)]
pub(crate) struct OfficerIdArg {
    /// The officer's id.
    pub(crate) id: String,
}

/// Where a password comes from. It is never taken from argv, where other users of the
/// machine could read it.
#[derive(Debug, Args)]
pub(crate) struct PasswordSource {
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "no_password")]
    pub(crate) password_stdin: bool,

    /// No password (such an officer can log in only on an open-mode server).
    #[arg(long)]
    pub(crate) no_password: bool,
}

/// `officer add`
#[derive(Debug, Args)]
pub(crate) struct OfficerAddArgs {
    /// The new officer's id: 1-64 of A-Z, a-z, 0-9, '.', '_', '-'.
    pub(crate) id: String,

    /// A name to show to customers and colleagues.
    #[arg(long)]
    pub(crate) display_name: Option<String>,

    #[command(flatten)]
    pub(crate) password: PasswordSource,
}

/// `officer login`
#[derive(Debug, Args)]
pub(crate) struct OfficerLoginArgs {
    /// The officer's id.
    pub(crate) id: String,

    #[command(flatten)]
    pub(crate) password: PasswordSource,
}

/// `customer ...`
#[derive(Debug, Subcommand)]
pub(crate) enum CustomerCommand {
    /// Start or resume a customer's chat; prints the chat and a token (remote: saves it).
    Login(CustomerLoginArgs),
    /// A customer's chats, newest first: the open one (if any) and the ended ones
    /// (that customer, officers and the admin; default: the logged-in customer).
    Chats(CustomerChatsArgs),
}

/// `customer chats`
#[derive(Debug, Args)]
pub(crate) struct CustomerChatsArgs {
    /// The customer's id (default: the logged-in customer, or the one named by --as).
    pub(crate) id: Option<String>,
}

/// `customer login`
#[derive(Debug, Args)]
pub(crate) struct CustomerLoginArgs {
    /// The customer's id, as the host application knows them (not with
    /// --identity-token, which names the customer itself).
    #[arg(required_unless_present = "identity_token")]
    pub(crate) id: Option<String>,

    /// Assign a new chat to this officer instead of queueing it (servers without a
    /// customer secret; a secured server takes the officer only from an identity token).
    #[arg(long)]
    pub(crate) officer: Option<String>,

    /// Hex HMAC-SHA256(secret, customerId), when the server has a customer secret.
    #[arg(long)]
    pub(crate) signature: Option<String>,

    /// Log in with the host application's identity token (a JWT signed with the
    /// customer secret, which expires) instead of an id and signature.
    #[arg(
        long,
        env = "CHAT_IDENTITY_TOKEN",
        hide_env_values = true,
        conflicts_with_all = ["id", "officer", "signature"]
    )]
    pub(crate) identity_token: Option<String>,
}

/// `chats`
#[derive(Debug, Args)]
pub(crate) struct ChatsArgs {
    /// The officer (default: the logged-in officer, or the one named by --as).
    pub(crate) officer: Option<String>,

    /// Which of their chats: the open ones, the resolved ones, or all.
    #[arg(long, value_enum, default_value_t = StatusArg::Open)]
    pub(crate) status: StatusArg,
}

/// `chats --status`: the contract's `?status=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusArg {
    /// Assigned to them and not ended.
    Open,
    /// Ended while theirs.
    Resolved,
    /// Both.
    All,
}

impl From<StatusArg> for chatcore::ChatsFilter {
    fn from(status: StatusArg) -> Self {
        match status {
            StatusArg::Open => chatcore::ChatsFilter::Open,
            StatusArg::Resolved => chatcore::ChatsFilter::Resolved,
            StatusArg::All => chatcore::ChatsFilter::All,
        }
    }
}

/// `claim`
#[derive(Debug, Args)]
pub(crate) struct ClaimArgs {
    /// The chat's id.
    pub(crate) chat: String,
}

/// A command on one chat (`resolve`, `release`).
#[derive(Debug, Args)]
pub(crate) struct ChatArg {
    /// The chat's id.
    pub(crate) chat: String,
}

/// `transfer`
#[derive(Debug, Args)]
pub(crate) struct TransferArgs {
    /// The chat's id.
    pub(crate) chat: String,

    /// The officer who takes the chat over (they must exist and be enabled).
    pub(crate) officer: String,
}

/// `reopen`
#[derive(Debug, Args)]
pub(crate) struct ReopenArgs {
    /// The chat's id.
    pub(crate) chat: String,

    /// The officer the chat goes to: required for the admin; an officer may name only
    /// themselves (the default).
    #[arg(long = "for", value_name = "OFFICER")]
    pub(crate) for_officer: Option<String>,
}

/// `send`
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The chat's id.
    pub(crate) chat: String,

    /// The text; `-` reads it from standard input.
    pub(crate) text: String,

    /// Idempotency key: sending again with the same key stores nothing twice.
    #[arg(long)]
    pub(crate) client_id: Option<String>,
}

/// `attach`
#[derive(Debug, Args)]
pub(crate) struct AttachArgs {
    /// The chat's id.
    pub(crate) chat: String,

    /// The file to send.
    pub(crate) file: PathBuf,

    /// The name to send it under (default: the file's own name).
    #[arg(long)]
    pub(crate) name: Option<String>,

    /// Its Content-Type (default: none declared; the server finds the type in the
    /// bytes, and refuses a declared type they do not match).
    #[arg(long = "type", value_name = "MIME")]
    pub(crate) content_type: Option<String>,

    /// Idempotency key: sending again with the same key stores nothing twice.
    #[arg(long)]
    pub(crate) client_id: Option<String>,
}

/// `download`
#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    /// The attachment's id (a message's `attachment.id`).
    pub(crate) attachment: String,

    /// Where to write it; `-` for stdout. Default: its name, in the current directory.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Replace the output file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

/// `messages`
#[derive(Debug, Args)]
pub(crate) struct MessagesArgs {
    /// The chat's id.
    pub(crate) chat: String,

    /// Only messages with a greater seq.
    #[arg(long)]
    pub(crate) after: Option<u64>,

    /// Only messages with a smaller seq (the page is then the newest below it).
    #[arg(long)]
    pub(crate) before: Option<u64>,

    /// At most this many (1-1000, default 100).
    #[arg(long)]
    pub(crate) limit: Option<u32>,
}

/// `watch ...`
#[derive(Debug, Subcommand)]
pub(crate) enum WatchCommand {
    /// The shared queue's events and chats assigned to you (officers only).
    Queue,
    /// A chat's messages as they are stored.
    Chat(WatchChatArgs),
}

/// `watch chat`
#[derive(Debug, Args)]
pub(crate) struct WatchChatArgs {
    /// The chat's id.
    pub(crate) chat: String,

    /// First replay every message with a greater seq (default: only new ones).
    #[arg(long)]
    pub(crate) after_seq: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}
