//! `ApiError`: the one mapping from `chatcore::Error` (and from the transport's own
//! rejections) to an HTTP status and the contract's body
//! `{"error":{"code","message"}}`. It must not decide anything: the engine's error says
//! what went wrong; this file only says how it looks on the wire. A 500 shows nothing of
//! its cause, which goes to the log instead.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chatcore::ErrorKind;
use serde::Serialize;

/// An error response of the API.
#[derive(Debug)]
pub enum ApiError {
    /// An error of the engine.
    Core(chatcore::Error),
    /// A rejection by the transport itself (malformed body, path or query; unknown
    /// route; wrong method).
    Transport {
        /// The HTTP status.
        status: StatusCode,
        /// The contract's snake_case code.
        code: &'static str,
        /// A sentence the client can act on.
        message: String,
    },
}

impl ApiError {
    pub(crate) fn transport(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError::Transport {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::transport(StatusCode::BAD_REQUEST, "invalid_parameter", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::transport(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Core(e) => status_of(e.kind()),
            ApiError::Transport { status, .. } => *status,
        }
    }

    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Core(e) => e.code(),
            ApiError::Transport { code, .. } => code,
        }
    }

    /// For a rate limit, whole seconds until the request would be allowed (rounded up),
    /// as `Retry-After` and WebSocket error frames give it.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::Core(e) => e.retry_after().map(chatcore::error::retry_after_secs),
            ApiError::Transport { .. } => None,
        }
    }

    /// The sentence shown to the client (never internal details).
    pub fn message(&self) -> String {
        match self {
            ApiError::Core(e) => match e.kind() {
                ErrorKind::Internal => "internal error".to_string(),
                _ => e.public_message(),
            },
            ApiError::Transport { message, .. } => message.clone(),
        }
    }

    /// Writes the cause of a server-side failure to the log; client errors are not
    /// logged above debug, since any client can produce them at will.
    fn log(&self) {
        match self {
            ApiError::Core(e) => match e.kind() {
                ErrorKind::Internal => tracing::error!(error = ?e, "internal error"),
                ErrorKind::Unavailable => tracing::warn!(error = ?e, "store unavailable"),
                _ => tracing::debug!(code = e.code(), "request refused"),
            },
            // A refusal while shutting down or at the connection cap: no fault, and any
            // client can cause as many as it likes.
            ApiError::Transport { status, code, .. }
                if *status == StatusCode::SERVICE_UNAVAILABLE =>
            {
                tracing::debug!(code, "request refused: unavailable");
            }
            ApiError::Transport { status, code, .. } if status.is_server_error() => {
                tracing::error!(%status, code, "transport error");
            }
            ApiError::Transport { code, .. } => tracing::debug!(code, "request rejected"),
        }
    }
}

/// The status of each class of engine error.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<chatcore::Error> for ApiError {
    fn from(e: chatcore::Error) -> Self {
        ApiError::Core(e)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let body = Body {
            error: Detail {
                code: self.code(),
                message: self.message(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Answer for a path no route serves.
pub(crate) async fn not_found() -> ApiError {
    ApiError::transport(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Answer for a known path with a method it does not serve.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::transport(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not serve that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_say_nothing_of_their_cause() {
        let e = ApiError::from(chatcore::Error::Internal("disk on fire at /var/x".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.code(), "internal");
        assert!(!e.message().contains("disk"));
    }

    #[test]
    fn kinds_map_to_the_contract_statuses() {
        let cases = [
            (chatcore::Error::ChatNotFound, 404),
            (chatcore::Error::Unauthorized, 401),
            (chatcore::Error::InvalidIdentity("it has expired"), 401),
            (chatcore::Error::EmptyContent, 422),
            (chatcore::Error::ContentTooLong { max: 1 }, 413),
            (chatcore::Error::Forbidden("no".into()), 403),
            (
                chatcore::Error::RateLimited {
                    retry_after: std::time::Duration::from_secs(1),
                },
                429,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e).status().as_u16(), status);
        }
    }

    #[test]
    fn a_rate_limit_says_when_to_retry_in_whole_seconds_rounded_up() {
        let limited = |ms| {
            ApiError::from(chatcore::Error::RateLimited {
                retry_after: std::time::Duration::from_millis(ms),
            })
        };
        let response = limited(2_001).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "3");
        assert_eq!(limited(2_000).retry_after_secs(), Some(2));
        assert_eq!(limited(1).retry_after_secs(), Some(1));
        assert_eq!(limited(1).code(), "rate_limited");
        let other = ApiError::from(chatcore::Error::ChatNotFound).into_response();
        assert!(other.headers().get(RETRY_AFTER).is_none());
    }
}
