//! The CLI's typed error and the one place where failures become exit codes.
//!
//! Local mode fails with `chatcore::Error` (classified by `ErrorKind`), remote mode with an
//! HTTP status and the contract's error body; both turn into an [`ApiError`] carrying the
//! contract's code, a sentence and an [`ExitKind`], here and nowhere else. Commands add
//! `anyhow` context around it; `main` finds it in the chain to pick the exit code.

use std::fmt;

/// Exit codes, documented in `--help` (`cli::EXIT_CODES`) and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitKind {
    /// 1: anything else.
    Other = 1,
    /// 2: bad arguments (clap exits with 2 by itself for what it detects).
    Usage = 2,
    /// 3: 404.
    NotFound = 3,
    /// 4: 409.
    Conflict = 4,
    /// 5: 401 and 403.
    Auth = 5,
    /// 6: the server (or, locally, the database) cannot be reached.
    Unreachable = 6,
    /// 7: 400, 413 and 422.
    Invalid = 7,
    /// 8: 429, over a rate limit: wait (the message says how long) and try again.
    RateLimited = 8,
}

impl ExitKind {
    pub(crate) fn code(self) -> i32 {
        self as i32
    }

    /// How local mode's engine errors map to exit codes.
    fn from_core(kind: chatcore::ErrorKind) -> Self {
        use chatcore::ErrorKind as K;
        match kind {
            K::BadRequest | K::TooLarge | K::UnsupportedType | K::Unprocessable => {
                ExitKind::Invalid
            }
            K::Unauthorized | K::Forbidden => ExitKind::Auth,
            K::NotFound => ExitKind::NotFound,
            K::Conflict => ExitKind::Conflict,
            K::TooManyRequests => ExitKind::RateLimited,
            K::Unavailable | K::Internal => ExitKind::Other,
            // ErrorKind may grow; anything new is "anything else" until mapped here.
            #[allow(unreachable_patterns)]
            _ => ExitKind::Other,
        }
    }

    /// How remote mode's HTTP statuses map to exit codes: the same classes as
    /// [`ExitKind::from_core`], since chat-http derives its status from the same kinds.
    fn from_status(status: u16) -> Self {
        match status {
            400 | 413 | 415 | 416 | 422 => ExitKind::Invalid,
            401 | 403 => ExitKind::Auth,
            404 => ExitKind::NotFound,
            409 => ExitKind::Conflict,
            429 => ExitKind::RateLimited,
            _ => ExitKind::Other,
        }
    }
}

/// A failure with the contract's error code, shown as `code: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// The contract's snake_case code (`already_assigned`, ...), or a CLI code such as
    /// `unreachable` or `usage` for failures that never reached the engine.
    pub(crate) code: String,
    /// A sentence a person can act on.
    pub(crate) message: String,
    /// Which exit code this failure gives.
    pub(crate) kind: ExitKind,
}

impl ApiError {
    pub(crate) fn new(kind: ExitKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            kind,
        }
    }

    /// An engine error in local mode. The operator owns the database, so the cause of an
    /// internal or storage error is shown rather than hidden as a server would.
    pub(crate) fn from_core(err: &chatcore::Error) -> Self {
        let mut message = err.public_message();
        if let Some(source) = std::error::Error::source(err) {
            message = format!("{message}: {source}");
        }
        Self::new(ExitKind::from_core(err.kind()), err.code(), message)
    }

    /// An error response from the server. `code`/`message` come from the contract's body
    /// when it had one.
    pub(crate) fn from_http(status: u16, code: Option<String>, message: Option<String>) -> Self {
        let code = code.unwrap_or_else(|| format!("http_{status}"));
        let message = message.unwrap_or_else(|| format!("the server answered HTTP {status}"));
        Self::new(ExitKind::from_status(status), code, message)
    }

    /// A WebSocket `error` frame (`{type, code, message}`), which has no status: the code
    /// says which class it is.
    pub(crate) fn from_ws_code(code: &str, message: Option<&str>) -> Self {
        let kind = match chatcore::ErrorKind::of_code(code) {
            Some(kind) => ExitKind::from_core(kind),
            // The WebSocket protocol's own codes (docs/API.md), which never reach the
            // engine.
            None => match code {
                "invalid_frame" => ExitKind::Invalid,
                "too_many_rooms" => ExitKind::RateLimited,
                _ => ExitKind::Other,
            },
        };
        Self::new(
            kind,
            code,
            message.unwrap_or("the server refused the request"),
        )
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Usage, "usage", message)
    }

    pub(crate) fn unreachable(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Unreachable, "unreachable", message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<chatcore::Error> for ApiError {
    fn from(e: chatcore::Error) -> Self {
        ApiError::from_core(&e)
    }
}

/// What `main` reports for a failed run: the typed error when there is one, else a
/// generic one (exit 1), plus the context lines added on the way up.
pub(crate) fn classify(err: &anyhow::Error) -> (ApiError, Vec<String>) {
    let api = err
        .chain()
        .find_map(|e| e.downcast_ref::<ApiError>())
        .cloned();
    match api {
        Some(api) => {
            // Everything above the typed error in the chain is context added by commands.
            let context = err
                .chain()
                .take_while(|e| e.downcast_ref::<ApiError>().is_none())
                .map(ToString::to_string)
                .collect();
            (api, context)
        }
        None => {
            let message = err
                .chain()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": ");
            (ApiError::new(ExitKind::Other, "error", message), Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_remote_agree_on_each_class() {
        use chatcore::ErrorKind as K;
        let pairs = [
            (K::BadRequest, 400),
            (K::Unauthorized, 401),
            (K::Forbidden, 403),
            (K::NotFound, 404),
            (K::Conflict, 409),
            (K::TooLarge, 413),
            (K::Unprocessable, 422),
            (K::TooManyRequests, 429),
            (K::Unavailable, 503),
            (K::Internal, 500),
        ];
        for (kind, status) in pairs {
            assert_eq!(
                ExitKind::from_core(kind),
                ExitKind::from_status(status),
                "{kind:?} vs {status}"
            );
        }
    }

    #[test]
    fn rate_limits_have_their_own_exit_code_in_every_mode() {
        let local = ApiError::from_core(&chatcore::Error::RateLimited {
            retry_after: std::time::Duration::from_secs(3),
        });
        assert_eq!(
            (local.kind.code(), local.code.as_str()),
            (8, "rate_limited")
        );
        assert!(local.message.contains("3 s"), "{}", local.message);
        let remote = ApiError::from_http(429, Some("rate_limited".into()), None);
        assert_eq!(remote.kind.code(), 8);
        assert_eq!(ApiError::from_ws_code("rate_limited", None).kind.code(), 8);
    }

    #[test]
    fn a_websocket_error_code_is_classed_as_the_engine_classes_it() {
        for (code, kind) in chatcore::error::CODES {
            assert_eq!(
                ApiError::from_ws_code(code, None).kind,
                ExitKind::from_core(*kind),
                "{code}"
            );
        }
        assert_eq!(
            ApiError::from_ws_code("invalid_frame", None).kind,
            ExitKind::Invalid
        );
        assert_eq!(
            ApiError::from_ws_code("too_many_rooms", None).kind,
            ExitKind::RateLimited
        );
    }

    #[test]
    fn the_typed_error_is_found_under_context() {
        let err = anyhow::Error::new(ApiError::new(ExitKind::Conflict, "already_assigned", "x"))
            .context("claiming chat c");
        let (api, context) = classify(&err);
        assert_eq!(api.kind.code(), 4);
        assert_eq!(context, vec!["claiming chat c".to_string()]);
    }
}
