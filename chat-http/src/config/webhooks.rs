//! The webhook flags (flattened into `Config`): the contract's `--webhook-url` and
//! `--webhook-secret`, the flag webhook's event filter, the CA certificates `https`
//! receivers may be signed by, and the delivery worker's timings. Only settings: `main`
//! sets the flag webhook in the store and reads the CA file, the engine delivers.

use std::path::PathBuf;
use std::time::Duration;

use super::values::TimeoutSetting;

/// Webhooks: every `chat_updated` and `new_message` POSTed, signed, to a URL.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookFlags {
    /// Where to POST every `chat_updated` and `new_message` event (http:// or https://), as
    /// `{ "id", "type", "createdAt", "data" }` signed in the `Chat-Signature` header
    /// (docs/API.md, "Webhooks"). Needs --webhook-secret. More webhooks, each with its
    /// own secret and filter, are added by the admin (`/api/webhooks`, chat-cli).
    #[arg(long, env = "CHAT_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,

    /// The secret the webhook's signatures are made with (HMAC-SHA256), 16 characters
    /// or more (`openssl rand -hex 32`). Prefer --webhook-secret-file or the
    /// environment: `ps` shows flags.
    #[arg(long, env = "CHAT_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// File holding the webhook secret (read at start; a trailing newline is ignored).
    /// Not with --webhook-secret.
    #[arg(
        long,
        env = "CHAT_WEBHOOK_SECRET_FILE",
        value_name = "PATH",
        conflicts_with = "webhook_secret"
    )]
    pub webhook_secret_file: Option<PathBuf>,

    /// Which events --webhook-url receives, comma-separated: chat_updated, new_message.
    /// Default: both.
    #[arg(long, env = "CHAT_WEBHOOK_EVENTS", value_delimiter = ',')]
    pub webhook_events: Vec<String>,

    /// CA certificates (a PEM file, one or more) that https webhook receivers' certificates
    /// may chain to, besides the system's roots (/etc/ssl/certs): a bank's internal CA.
    /// Read at start; a file with no usable certificate stops the start.
    #[arg(long, env = "CHAT_WEBHOOK_CA", value_name = "FILE")]
    pub webhook_ca: Option<PathBuf>,

    /// The longest one webhook request may take, connecting included.
    #[arg(long, env = "CHAT_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub webhook_timeout: Duration,

    /// Most webhook requests this node has in flight at once (each to a different
    /// chat: a chat's events go one at a time, in order).
    #[arg(long, env = "CHAT_WEBHOOK_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub webhook_concurrency: u32,

    /// The CPU priority of the thread the webhooks' deliveries run on, as `nice`: 0 (the
    /// chat traffic's own) to 19 (the lowest). On a node short of CPU, chat requests go
    /// first and deliveries fall behind, kept in the outbox, until there is CPU again;
    /// with CPU to spare it changes nothing. Linux only (elsewhere the thread keeps the
    /// process's priority).
    #[arg(long, env = "CHAT_WEBHOOK_NICE", default_value_t = 19,
          value_parser = clap::value_parser!(u8).range(0..=19))]
    pub webhook_nice: u8,

    /// How long an event is retried before it is marked dead (the admin may retry dead
    /// ones), as `1d`, `12h`, `30m`.
    #[arg(long, env = "CHAT_WEBHOOK_MAX_AGE", default_value = "1d", value_parser = duration)]
    pub webhook_max_age: Duration,

    /// The wait after a delivery's first failure; it doubles with each failure (with
    /// jitter), up to --webhook-backoff-max.
    #[arg(long, env = "CHAT_WEBHOOK_BACKOFF_MIN", default_value = "1s", value_parser = duration)]
    pub webhook_backoff_min: Duration,

    /// The longest wait between two attempts at a delivery.
    #[arg(long, env = "CHAT_WEBHOOK_BACKOFF_MAX", default_value = "10m", value_parser = duration)]
    pub webhook_backoff_max: Duration,

    /// How long a node holds the chats' deliveries it took before another node may take
    /// them over (with several nodes: a node that died mid-delivery hands its
    /// deliveries over after this). More than --webhook-timeout.
    #[arg(long, env = "CHAT_WEBHOOK_LEASE", default_value = "1m", value_parser = duration)]
    pub webhook_lease: Duration,

    /// How often the outbox is read when nothing woke the worker: other nodes' events
    /// and retries that come due are found this late at most.
    #[arg(long, env = "CHAT_WEBHOOK_POLL", default_value = "1s", value_parser = duration)]
    pub webhook_poll: Duration,
}

/// A duration: `500ms`, `10s`, `5m`, `12h` or `2d`, more than zero and at most 30 days.
fn duration(s: &str) -> Result<Duration, String> {
    if let Some(days) = s.trim().strip_suffix('d') {
        let days: u64 = days
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like 10s, 5m, 12h or 2d"))?;
        if !(1..=30).contains(&days) {
            return Err(format!("{s:?}: at most 30 days"));
        }
        return Ok(Duration::from_secs(days * 86_400));
    }
    match s.parse::<TimeoutSetting>()?.0 {
        Some(d) => Ok(d),
        None => Err(format!("{s:?}: a duration is needed here, not off")),
    }
}

impl WebhookFlags {
    /// Refuses a URL without a secret (or the reverse), a URL, secret or filter the
    /// engine would refuse, and a lease the timeout could outlast.
    pub fn check(&self) -> Result<(), String> {
        match (&self.webhook_url, &self.webhook_secret) {
            (Some(_), None) => {
                return Err(
                    "--webhook-url needs --webhook-secret (or --webhook-secret-file): every \
                     event is signed with it"
                        .into(),
                );
            }
            (None, Some(_)) => return Err("--webhook-secret needs --webhook-url".into()),
            _ => {}
        }
        if self.webhook_url.is_none() && !self.webhook_events.is_empty() {
            return Err("--webhook-events needs --webhook-url".into());
        }
        if let (Some(url), Some(secret)) = (&self.webhook_url, &self.webhook_secret) {
            use chatcore::webhooks::{WebhookSecret, check_url, parse_events};
            check_url(url, crate::webhooks::SCHEMES).map_err(|e| format!("--webhook-url: {e}"))?;
            WebhookSecret::new(secret.as_str()).map_err(|e| format!("--webhook-secret: {e}"))?;
            if !self.webhook_events.is_empty() {
                parse_events(Some(self.webhook_events.as_slice()))
                    .map_err(|e| format!("--webhook-events: {e}"))?;
            }
        }
        if self.webhook_lease <= self.webhook_timeout {
            return Err(format!(
                "--webhook-lease ({:?}) must be longer than --webhook-timeout ({:?}): a \
                 delivery must end before another node may take it over",
                self.webhook_lease, self.webhook_timeout
            ));
        }
        if self.webhook_backoff_max < self.webhook_backoff_min {
            return Err("--webhook-backoff-max must be at least --webhook-backoff-min".into());
        }
        Ok(())
    }

    /// The engine's delivery settings.
    pub fn settings(&self) -> chatcore::WebhookSettings {
        let mut s = chatcore::WebhookSettings::default();
        s.timeout = self.webhook_timeout;
        s.concurrency = self.webhook_concurrency as usize;
        s.max_age = self.webhook_max_age;
        s.backoff_min = self.webhook_backoff_min;
        s.backoff_max = self.webhook_backoff_max;
        s.lease = self.webhook_lease;
        s.poll = self.webhook_poll;
        s.schemes = crate::webhooks::SCHEMES
            .iter()
            .map(|s| s.to_string())
            .collect();
        s
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::Config;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let c = Config::try_parse_from(std::iter::once("chat-http").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        c.check()?;
        Ok(c)
    }

    #[test]
    fn webhook_flags_default_to_the_documented_ones_and_are_checked() {
        let c = parse(&[]).unwrap();
        let s = c.webhooks.settings();
        assert_eq!(c.webhooks.webhook_url, None);
        assert_eq!(s.timeout.as_secs(), 10);
        assert_eq!(s.concurrency, 16);
        assert_eq!(s.max_age.as_secs(), 86_400);
        assert_eq!((s.backoff_min.as_secs(), s.backoff_max.as_secs()), (1, 600));
        assert_eq!((s.lease.as_secs(), s.poll.as_secs()), (60, 1));
        let set = parse(&[
            "--webhook-url",
            "http://crm/x",
            "--webhook-secret",
            "0123456789abcdef",
            "--webhook-events",
            "new_message",
            "--webhook-max-age",
            "2d",
            "--webhook-backoff-min",
            "50ms",
        ])
        .unwrap();
        assert_eq!(set.webhooks.webhook_events, ["new_message"]);
        assert_eq!(set.webhooks.settings().max_age.as_secs(), 2 * 86_400);
        let https = parse(&[
            "--webhook-url",
            "https://crm.bank.example/x",
            "--webhook-secret",
            "0123456789abcdef",
            "--webhook-ca",
            "/etc/chat/bank-ca.pem",
        ])
        .unwrap();
        assert_eq!(
            https.webhooks.webhook_ca.as_deref(),
            Some(std::path::Path::new("/etc/chat/bank-ca.pem"))
        );
        assert_eq!(https.webhooks.settings().schemes, ["http", "https"]);
        for bad in [
            &["--webhook-url", "http://crm/x"][..],
            &["--webhook-secret", "0123456789abcdef"],
            &["--webhook-events", "new_message"],
            &[
                "--webhook-url",
                "ftp://crm/x",
                "--webhook-secret",
                "0123456789abcdef",
            ],
            &["--webhook-url", "http://crm/x", "--webhook-secret", "short"],
            &["--webhook-timeout", "2m"],
            &["--webhook-max-age", "31d"],
            &["--webhook-poll", "off"],
            &["--webhook-concurrency", "0"],
            &["--webhook-backoff-min", "1m", "--webhook-backoff-max", "1s"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
