//! What can go wrong talking to a server: the server refused ([`Error::Api`], with the
//! contract's code), could not be reached, could not be trusted (TLS), answered something
//! that is not the contract, or closed the WebSocket.

use chatcore::ErrorKind;
use chatcore::wire::{CLOSE_UNAUTHORIZED, ErrorFrame};

/// A refusal in the contract's words: `{"error":{"code","message"}}` over REST, an
/// `error` frame over the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status; `None` for a WebSocket error frame.
    pub status: Option<u16>,
    /// The contract's code (`already_assigned`, `forbidden`, ...); `http_<status>` when
    /// the answer had no contract body (a proxy's error page, say).
    pub code: String,
    /// The server's sentence.
    pub message: String,
    /// For `rate_limited`: seconds until a retry would be allowed (`Retry-After`, or the
    /// frame's `retryAfter`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// The class of the refusal: from the status when there is one, else from the code
    /// (`None` for a code the engine does not have, such as the WebSocket's own
    /// `invalid_frame`).
    pub fn kind(&self) -> Option<ErrorKind> {
        match self.status {
            Some(status) => kind_of_status(status),
            None => ErrorKind::of_code(&self.code),
        }
    }

    pub(crate) fn from_frame(frame: ErrorFrame) -> Self {
        Self {
            status: None,
            code: frame.code,
            message: frame.message,
            retry_after: frame.retry_after,
        }
    }
}

/// The class chat-http answers each status for (its one mapping runs the other way).
fn kind_of_status(status: u16) -> Option<ErrorKind> {
    Some(match status {
        400 => ErrorKind::BadRequest,
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        413 => ErrorKind::TooLarge,
        415 => ErrorKind::UnsupportedType,
        422 => ErrorKind::Unprocessable,
        429 => ErrorKind::TooManyRequests,
        503 => ErrorKind::Unavailable,
        500..=599 => ErrorKind::Internal,
        _ => return None,
    })
}

/// A failed call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused.
    #[error("{}: {}", .0.code, .0.message)]
    Api(ApiError),
    /// No answer: the server cannot be reached, or the connection broke off.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// What was asked.
        url: String,
        /// Why, with its causes.
        reason: String,
    },
    /// TLS failed: the `https`/`wss` server's certificate is not trusted, names another
    /// host or has expired; or a CA certificate given to the builder is not usable.
    /// Not transient: trying again fails the same way until the certificate or the
    /// client's CA certificates change.
    #[error("TLS with {url}: {reason}")]
    Tls {
        /// What was asked (the server's base URL for a CA certificate refused at build).
        url: String,
        /// Why, in words for the operator, rustls' name for the failure in brackets.
        reason: String,
    },
    /// An answer that is not what the contract says.
    #[error("unexpected answer from {url}: {reason}")]
    BadResponse {
        /// What was asked.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The WebSocket ended (with the server's close code when it sent one).
    #[error("the WebSocket closed{}", match .code { Some(c) => format!(" with code {c}"), None => String::new() })]
    Closed {
        /// The close code.
        code: Option<u16>,
    },
    /// The call needs a session token and the client has none.
    #[error("no token: log in first, or give the client one (Client::with_token)")]
    NoToken,
}

impl Error {
    /// The contract's code for a refusal; for the client's own failures `unreachable`,
    /// `tls`, `bad_response`, `closed` (`unauthorized` for a 4401 close) or `no_token`.
    pub fn code(&self) -> &str {
        match self {
            Error::Api(e) => &e.code,
            Error::Unreachable { .. } => "unreachable",
            Error::Tls { .. } => "tls",
            Error::BadResponse { .. } => "bad_response",
            Error::Closed {
                code: Some(CLOSE_UNAUTHORIZED),
            } => "unauthorized",
            Error::Closed { .. } => "closed",
            Error::NoToken => "no_token",
        }
    }

    /// The HTTP status of a REST refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => e.status,
            _ => None,
        }
    }

    /// The refusal, when the server refused.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the session is missing, refused or ended (401, or a 4401 close): log in
    /// again.
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
            || matches!(
                self,
                Error::Closed {
                    code: Some(CLOSE_UNAUTHORIZED)
                }
            )
            || matches!(self, Error::Api(e) if e.status.is_none() && e.code == "unauthorized")
            || matches!(self, Error::NoToken)
    }

    /// Whether trying again later may succeed: no answer, a dropped connection, the
    /// server unavailable or over a rate limit.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Closed { code } => *code != Some(CLOSE_UNAUTHORIZED),
            Error::Api(e) => matches!(
                e.kind(),
                Some(ErrorKind::Unavailable | ErrorKind::TooManyRequests | ErrorKind::Internal)
            ),
            Error::Tls { .. } | Error::BadResponse { .. } | Error::NoToken => false,
        }
    }
}

/// A request or a connect that got no answer: [`Error::Tls`] when its TLS handshake
/// failed, else [`Error::Unreachable`] with the causes.
pub(crate) fn transport(url: &str, e: &(dyn std::error::Error + 'static)) -> Error {
    match crate::tls::failure(e) {
        Some(reason) => Error::Tls {
            url: url.to_string(),
            reason,
        },
        None => Error::Unreachable {
            url: url.to_string(),
            reason: chain(e),
        },
    }
}

/// An error with its causes ("error sending request: connection refused").
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status: Option<u16>, code: &str) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: "m".into(),
            retry_after: None,
        }
    }

    #[test]
    fn a_refusal_is_classed_by_status_over_rest_and_by_code_over_the_websocket() {
        assert_eq!(
            refusal(Some(409), "already_assigned").kind(),
            Some(ErrorKind::Conflict)
        );
        for (code, kind) in chatcore::error::CODES {
            assert_eq!(refusal(None, code).kind(), Some(*kind), "{code}");
        }
        assert_eq!(refusal(None, "invalid_frame").kind(), None);
        assert_eq!(refusal(Some(418), "http_418").kind(), None);
    }

    #[test]
    fn a_4401_close_is_unauthorized_and_final() {
        let closed = Error::Closed {
            code: Some(CLOSE_UNAUTHORIZED),
        };
        assert!(closed.is_unauthorized());
        assert!(!closed.is_transient());
        assert_eq!(closed.code(), "unauthorized");
        let dropped = Error::Closed { code: None };
        assert!(dropped.is_transient() && !dropped.is_unauthorized());
        assert!(Error::Api(refusal(Some(429), "rate_limited")).is_transient());
        assert!(!Error::Api(refusal(Some(403), "forbidden")).is_transient());
    }
}
