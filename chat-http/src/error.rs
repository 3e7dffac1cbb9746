//! `ApiError`: the one mapping from `chatcore::Error` (and from the transport's own
//! rejections) to an HTTP status and the contract's body
//! `{"error":{"code","message"}}`. It must not decide anything: the engine's error says
//! what went wrong; this file only says how it looks on the wire. A 500 shows nothing of
//! its cause, which goes to the log instead.

use axum::Json;
use axum::http::StatusCode;
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
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
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
        (status, Json(body)).into_response()
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
            (chatcore::Error::EmptyContent, 422),
            (chatcore::Error::ContentTooLong { max: 1 }, 413),
            (chatcore::Error::Forbidden("no".into()), 403),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e).status().as_u16(), status);
        }
    }
}
