//! The engine's error type. Every variant maps to exactly one contract error code and one
//! [`ErrorKind`], which transports turn into their own status (HTTP status, CLI exit code).

use std::fmt;
use std::time::Duration;

use crate::ids::{IdKind, OfficerId};

/// The class of an error, which a transport maps to its own status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Malformed parameters (HTTP 400).
    BadRequest,
    /// No or bad credentials (HTTP 401).
    Unauthorized,
    /// Authenticated but not allowed (HTTP 403).
    Forbidden,
    /// No such thing (HTTP 404).
    NotFound,
    /// Conflicts with the current state (HTTP 409).
    Conflict,
    /// Too large (HTTP 413).
    TooLarge,
    /// A file of a type the server does not take (HTTP 415).
    UnsupportedType,
    /// Well-formed but invalid (HTTP 422).
    Unprocessable,
    /// Over an abuse limit; retry later (HTTP 429 with `Retry-After`).
    TooManyRequests,
    /// The store cannot take the request right now; nothing was changed (HTTP 503).
    Unavailable,
    /// A bug or an unexpected failure; details are logged, never shown (HTTP 500).
    Internal,
}

/// Every error code of the engine with its class: the one list, from which
/// [`Error::kind`] and [`ErrorKind::of_code`] (for clients, which see only a code) are
/// read. Transports add their own codes for what never reaches the engine (a malformed
/// body, an unknown route, a WebSocket frame of no known type).
pub const CODES: &[(&str, ErrorKind)] = &[
    ("invalid_parameter", ErrorKind::BadRequest),
    ("invalid_id", ErrorKind::Unprocessable),
    ("invalid_field", ErrorKind::Unprocessable),
    ("empty_content", ErrorKind::Unprocessable),
    ("message_too_large", ErrorKind::TooLarge),
    ("attachment_too_large", ErrorKind::TooLarge),
    ("unsupported_type", ErrorKind::UnsupportedType),
    ("upload_incomplete", ErrorKind::BadRequest),
    ("attachment_not_found", ErrorKind::NotFound),
    ("attachments_disabled", ErrorKind::Forbidden),
    ("unauthorized", ErrorKind::Unauthorized),
    ("invalid_credentials", ErrorKind::Unauthorized),
    ("invalid_signature", ErrorKind::Unauthorized),
    ("invalid_identity", ErrorKind::Unauthorized),
    ("forbidden", ErrorKind::Forbidden),
    ("officer_disabled", ErrorKind::Forbidden),
    ("chat_not_found", ErrorKind::NotFound),
    ("officer_not_found", ErrorKind::NotFound),
    ("webhook_not_found", ErrorKind::NotFound),
    ("officer_exists", ErrorKind::Conflict),
    ("already_assigned", ErrorKind::Conflict),
    ("not_assigned", ErrorKind::Conflict),
    ("chat_resolved", ErrorKind::Conflict),
    ("not_resolved", ErrorKind::Conflict),
    ("customer_has_open_chat", ErrorKind::Conflict),
    ("at_capacity", ErrorKind::Conflict),
    ("rate_limited", ErrorKind::TooManyRequests),
    ("unavailable", ErrorKind::Unavailable),
    ("internal", ErrorKind::Internal),
];

impl ErrorKind {
    /// The class of one of the engine's error codes ([`CODES`]); `None` for a code the
    /// engine does not have (a transport's own, or one from a newer server).
    pub fn of_code(code: &str) -> Option<ErrorKind> {
        CODES
            .iter()
            .find(|(known, _)| *known == code)
            .map(|(_, kind)| *kind)
    }
}

/// Everything an engine operation can refuse or fail with.
///
/// `code()` gives the contract's snake_case code and `Display` a sentence a person can act
/// on; neither ever contains a secret or internal detail (`Internal` and `Unavailable` keep
/// their cause in `source()` for logs).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An id is not of its allowed form (422 `invalid_id`).
    #[error("{reason}")]
    InvalidId {
        /// Which id.
        kind: IdKind,
        /// What is wrong with it.
        reason: String,
    },
    /// A request parameter is malformed or out of range (400 `invalid_parameter`).
    #[error("{name}: {reason}")]
    InvalidParameter {
        /// The parameter's name as the client spells it.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A field is well-formed but not acceptable (422 `invalid_field`).
    #[error("{name}: {reason}")]
    InvalidField {
        /// The field's name as the client spells it.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A message has no visible content: empty, or only whitespace and other invisible
    /// characters such as zero-width spaces (422 `empty_content`).
    #[error(
        "message content must not be empty or only invisible characters (whitespace, \
         zero-width or formatting characters)"
    )]
    EmptyContent,
    /// A message is longer than the server allows (413 `message_too_large`).
    #[error("message content is longer than {max} characters")]
    ContentTooLong {
        /// The limit in characters (Unicode scalar values).
        max: usize,
    },
    /// A file is larger than the server takes (413 `attachment_too_large`); found from
    /// its declared length or while it streams, before it is stored.
    #[error("the file is larger than {max} bytes, the most this server takes")]
    AttachmentTooLarge {
        /// The limit in bytes.
        max: u64,
    },
    /// A file's bytes are not of a type the server takes, or do not agree with the type
    /// or the name the sender gave (415 `unsupported_type`). The reason is a sentence
    /// of the server's, never the file's content.
    #[error("{0}")]
    UnsupportedType(String),
    /// An upload's body ended before its end, failed, or came more slowly than the
    /// server waits for (400 `upload_incomplete`); nothing was stored.
    #[error("the upload did not complete: {0}")]
    UploadIncomplete(String),
    /// No such attachment, or (to a customer) one that is not theirs to read (404
    /// `attachment_not_found`).
    #[error("no such attachment")]
    AttachmentNotFound,
    /// The service has no place to store files (403 `attachments_disabled`): it was
    /// built without a [`crate::BlobStore`].
    #[error("this server does not take attachments")]
    AttachmentsDisabled,
    /// No credentials, or a token that is unknown, revoked or expired (401 `unauthorized`).
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// Login refused: unknown officer or wrong password, told apart by nothing
    /// (401 `invalid_credentials`).
    #[error("unknown officer id or wrong password")]
    InvalidCredentials,
    /// A customer signature is missing or wrong (401 `invalid_signature`).
    #[error("signature must be the lowercase hex HMAC-SHA256 of the customer id")]
    InvalidSignature,
    /// The officer was disabled by the admin: they may not log in (403
    /// `officer_disabled`; told only to whoever proved the password).
    #[error("this officer account is disabled; ask the administrator")]
    OfficerDisabled,
    /// A customer identity token (JWT) does not verify, is malformed, lacks `sub` or
    /// `exp`, or has expired; or the service has no customer secret to verify it with
    /// (401 `invalid_identity`). The reason is a fixed sentence, never token content.
    #[error("identityToken refused: {0}")]
    InvalidIdentity(&'static str),
    /// The caller is known but may not do this (403 `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// A chat does not exist (404 `chat_not_found`).
    #[error("no such chat")]
    ChatNotFound,
    /// An officer does not exist (404 `officer_not_found`). Customer login never answers
    /// it: an officer it names who does not exist is answered like no officer.
    #[error("no such officer")]
    OfficerNotFound,
    /// No webhook (or webhook delivery) with that id (404 `webhook_not_found`).
    #[error("no such webhook")]
    WebhookNotFound,
    /// An officer with this id exists already (409 `officer_exists`).
    #[error("an officer with id {0} exists already")]
    OfficerExists(OfficerId),
    /// Another officer owns the chat (409 `already_assigned`).
    #[error("the chat is already assigned to officer {0}")]
    AlreadyAssigned(OfficerId),
    /// The change needs an assigned chat and this one is pending (409 `not_assigned`).
    #[error("the chat is in the queue, not assigned to an officer")]
    NotAssigned,
    /// The chat has ended; a new message or change needs an open chat (409
    /// `chat_resolved`).
    #[error("the chat is resolved; the customer starts a new one by logging in again")]
    ChatResolved,
    /// Only a resolved chat can be reopened (409 `not_resolved`).
    #[error("the chat is not resolved")]
    NotResolved,
    /// Reopening would give the customer a second open chat (409
    /// `customer_has_open_chat`).
    #[error("the customer has another open chat")]
    CustomerHasOpenChat,
    /// The officer the chat would go to holds as many open chats as their capacity
    /// allows (409 `at_capacity`); nothing changed.
    #[error("officer {0} holds as many open chats as their capacity allows")]
    AtCapacity(OfficerId),
    /// Over an abuse limit (429 `rate_limited`); nothing was done. Retry after
    /// `retry_after`.
    #[error("too many requests; wait {} s and try again", retry_after_secs(*.retry_after))]
    RateLimited {
        /// How long until the same request would be allowed.
        retry_after: Duration,
    },
    /// Storage is temporarily unable to serve (503 `unavailable`); nothing was changed.
    #[error("the service is temporarily unavailable; try again shortly")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An unexpected failure (500 `internal`).
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidId { .. } => "invalid_id",
            Error::InvalidParameter { .. } => "invalid_parameter",
            Error::InvalidField { .. } => "invalid_field",
            Error::EmptyContent => "empty_content",
            Error::ContentTooLong { .. } => "message_too_large",
            Error::AttachmentTooLarge { .. } => "attachment_too_large",
            Error::UnsupportedType(_) => "unsupported_type",
            Error::UploadIncomplete(_) => "upload_incomplete",
            Error::AttachmentNotFound => "attachment_not_found",
            Error::AttachmentsDisabled => "attachments_disabled",
            Error::Unauthorized => "unauthorized",
            Error::InvalidCredentials => "invalid_credentials",
            Error::InvalidSignature => "invalid_signature",
            Error::OfficerDisabled => "officer_disabled",
            Error::InvalidIdentity(_) => "invalid_identity",
            Error::Forbidden(_) => "forbidden",
            Error::ChatNotFound => "chat_not_found",
            Error::OfficerNotFound => "officer_not_found",
            Error::WebhookNotFound => "webhook_not_found",
            Error::OfficerExists(_) => "officer_exists",
            Error::AlreadyAssigned(_) => "already_assigned",
            Error::NotAssigned => "not_assigned",
            Error::ChatResolved => "chat_resolved",
            Error::NotResolved => "not_resolved",
            Error::CustomerHasOpenChat => "customer_has_open_chat",
            Error::AtCapacity(_) => "at_capacity",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    /// The class of the error (from [`CODES`], the one list of codes and classes).
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::of_code(self.code()).unwrap_or(ErrorKind::Internal)
    }

    /// For [`Error::RateLimited`], how long until the request would be allowed.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The sentence to show a client. For `Internal` it says nothing of the cause.
    pub fn public_message(&self) -> String {
        self.to_string()
    }

    pub(crate) fn forbidden(msg: impl Into<String>) -> Self {
        Error::Forbidden(msg.into())
    }

    pub(crate) fn internal(msg: impl fmt::Display) -> Self {
        Error::Internal(msg.to_string().into())
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        // Every store failure that reaches a caller passes here: counted once, by class.
        match e {
            StoreError::Unavailable(src) => {
                crate::metrics::store_error("unavailable");
                Error::Unavailable(src)
            }
            StoreError::Backend(src) => {
                crate::metrics::store_error("backend");
                Error::Internal(src)
            }
            StoreError::Duplicate => {
                crate::metrics::store_error("backend");
                Error::internal("unexpected duplicate key in store")
            }
        }
    }
}

/// Whole seconds to wait, rounded up and at least 1: what `Retry-After` says.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// Shorthand for results of engine operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each variant: every code is in [`CODES`], with the class the contract gives
    /// its HTTP status, and no code is listed twice.
    #[test]
    fn every_error_has_its_code_listed_once_with_its_class() {
        let officer = OfficerId::parse("amy").unwrap();
        let all = [
            (
                Error::InvalidId {
                    kind: IdKind::Officer,
                    reason: String::new(),
                },
                ErrorKind::Unprocessable,
            ),
            (
                Error::InvalidParameter {
                    name: "x",
                    reason: String::new(),
                },
                ErrorKind::BadRequest,
            ),
            (
                Error::InvalidField {
                    name: "x",
                    reason: String::new(),
                },
                ErrorKind::Unprocessable,
            ),
            (Error::EmptyContent, ErrorKind::Unprocessable),
            (Error::ContentTooLong { max: 1 }, ErrorKind::TooLarge),
            (Error::AttachmentTooLarge { max: 1 }, ErrorKind::TooLarge),
            (
                Error::UnsupportedType(String::new()),
                ErrorKind::UnsupportedType,
            ),
            (
                Error::UploadIncomplete(String::new()),
                ErrorKind::BadRequest,
            ),
            (Error::AttachmentNotFound, ErrorKind::NotFound),
            (Error::AttachmentsDisabled, ErrorKind::Forbidden),
            (Error::Unauthorized, ErrorKind::Unauthorized),
            (Error::InvalidCredentials, ErrorKind::Unauthorized),
            (Error::InvalidSignature, ErrorKind::Unauthorized),
            (Error::InvalidIdentity("x"), ErrorKind::Unauthorized),
            (Error::OfficerDisabled, ErrorKind::Forbidden),
            (Error::Forbidden(String::new()), ErrorKind::Forbidden),
            (Error::ChatNotFound, ErrorKind::NotFound),
            (Error::OfficerNotFound, ErrorKind::NotFound),
            (Error::WebhookNotFound, ErrorKind::NotFound),
            (Error::OfficerExists(officer.clone()), ErrorKind::Conflict),
            (Error::AlreadyAssigned(officer), ErrorKind::Conflict),
            (Error::NotAssigned, ErrorKind::Conflict),
            (Error::ChatResolved, ErrorKind::Conflict),
            (Error::NotResolved, ErrorKind::Conflict),
            (Error::CustomerHasOpenChat, ErrorKind::Conflict),
            (
                Error::AtCapacity(OfficerId::parse("o").unwrap()),
                ErrorKind::Conflict,
            ),
            (
                Error::RateLimited {
                    retry_after: Duration::from_secs(1),
                },
                ErrorKind::TooManyRequests,
            ),
            (Error::Unavailable("x".into()), ErrorKind::Unavailable),
            (Error::Internal("x".into()), ErrorKind::Internal),
        ];
        assert_eq!(all.len(), CODES.len(), "a variant or a code is missing");
        for (error, kind) in &all {
            assert_eq!(
                ErrorKind::of_code(error.code()),
                Some(*kind),
                "{}",
                error.code()
            );
            assert_eq!(error.kind(), *kind);
        }
        let mut codes: Vec<&str> = CODES.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CODES.len(), "a code is listed twice");
        assert_eq!(ErrorKind::of_code("no_such_code"), None);
    }
}
