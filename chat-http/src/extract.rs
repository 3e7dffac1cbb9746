//! Extractors whose rejections speak the contract: a JSON body (`invalid_body`, or
//! `body_too_large`), path and query parameters (`invalid_parameter`), the bearer token
//! resolved to a `chatcore::Actor` through `ChatService::authenticate` (under the
//! client address's budget of failed tokens), the client's address for per-address
//! limits (`invalid_forwarded_for` when a trusted proxy does not name it), and a
//! WebSocket upgrade's `Origin` (`origin_not_allowed`). They parse and authenticate
//! only; whether the actor may do anything is the service's call.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chatcore::Actor;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::limits::{UnreadableForwardedFor, client_ip};
use crate::state::AppState;

/// A JSON body. Unknown fields are ignored; anything else malformed is 400
/// `invalid_body`, and a body over the limit is 413 `body_too_large`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(body_rejection(&rejection)),
        }
    }
}

/// A JSON body that may be left out: no body (or an empty one) is `None`; a body
/// follows the rules of [`Json`].
#[derive(Debug, Clone, Default)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let empty = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0")
            || (!req
                .headers()
                .contains_key(axum::http::header::CONTENT_LENGTH)
                && !req
                    .headers()
                    .contains_key(axum::http::header::TRANSFER_ENCODING));
        if empty {
            return Ok(OptionalJson(None));
        }
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(OptionalJson(Some(value)))
    }
}

fn body_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::transport(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than the server accepts",
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::transport(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the body must be JSON, sent with `Content-Type: application/json`",
        ),
        // Serde's message names the field and what was expected; it never holds more
        // than the client itself sent.
        JsonRejection::JsonDataError(e) => ApiError::transport(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!(
                "the body does not have the expected fields: {}",
                e.body_text()
            ),
        ),
        JsonRejection::JsonSyntaxError(_) => ApiError::transport(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the body is not well-formed JSON",
        ),
        _ => ApiError::transport(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the request body could not be read",
        ),
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters; a malformed one (a chat id that is not a UUID, an officer id outside
/// the alphabet) is 400 `invalid_parameter`.
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(ApiError::invalid_parameter(path_message(&e.into_kind())))
            }
            // Missing parameters are a routing bug, never the client's doing.
            Err(other) => Err(ApiError::transport(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("internal error ({})", other.status()),
            )),
        }
    }
}

/// What is wrong with a path parameter, in the contract's words: its name as the
/// contract spells it (`chatId`, `officerId`) and what it must be, never the web
/// framework's own wording.
fn path_message(kind: &axum::extract::path::ErrorKind) -> String {
    use axum::extract::path::ErrorKind as K;
    let (key, value) = match kind {
        K::ParseErrorAtKey { key, value, .. } | K::DeserializeError { key, value, .. } => {
            (key.as_str(), value.as_str())
        }
        K::Message(message) => return message.clone(),
        other => return format!("the path is malformed: {other}"),
    };
    // A value is echoed only short and printable, so that the answer stays readable.
    let shown: String = value
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    match key {
        "chatId" => format!("chatId in the path must be a UUID, not `{shown}`"),
        "attachmentId" => format!("attachmentId in the path must be a UUID, not `{shown}`"),
        "officerId" => format!(
            "officerId in the path must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or \
             '-', not `{shown}`"
        ),
        "customerId" => format!(
            "customerId in the path must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or \
             '-', not `{shown}`"
        ),
        other => format!("the path parameter {other} is malformed: `{shown}`"),
    }
}

/// Query parameters; a malformed one (not a non-negative integer where one is expected)
/// is 400 `invalid_parameter`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::invalid_parameter(e.body_text()))
            }
            Err(other) => Err(ApiError::invalid_parameter(other.body_text())),
        }
    }
}

/// The caller, from `Authorization: Bearer <token>`; 401 `unauthorized` without a
/// valid token.
#[derive(Debug, Clone)]
pub struct Auth(pub Actor);

/// The caller if a token was sent, else `Actor::Anonymous`; a token that was sent must
/// be valid (401 otherwise).
#[derive(Debug, Clone)]
pub struct MaybeAuth(pub Actor);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = required_bearer(parts)?;
        Ok(Auth(authenticate(parts, state, token).await?))
    }
}

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts)? {
            Some(token) => Ok(MaybeAuth(authenticate(parts, state, token).await?)),
            None => Ok(MaybeAuth(Actor::Anonymous)),
        }
    }
}

/// The caller's own bearer token, once it is known to be valid (for logout).
#[derive(Debug, Clone)]
pub struct AuthToken(pub String);

impl FromRequestParts<AppState> for AuthToken {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = required_bearer(parts)?;
        authenticate(parts, state, token).await?;
        Ok(AuthToken(token.to_string()))
    }
}

/// Resolves a token under the client address's budget of failed tokens (429 once spent).
async fn authenticate(parts: &Parts, state: &AppState, token: &str) -> Result<Actor, ApiError> {
    let client = client_of(parts, state)?;
    let attempt = state.service().authenticate(token);
    Ok(state.limits().token(client, attempt).await?.actor)
}

/// The bearer token of an endpoint that needs one: 401 without it.
fn required_bearer(parts: &Parts) -> Result<&str, ApiError> {
    bearer(parts)?.ok_or_else(|| {
        ApiError::unauthorized("this endpoint needs `Authorization: Bearer <token>`")
    })
}

/// The bearer token, `None` when there is no `Authorization` header.
fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::unauthorized("the Authorization header must be `Bearer <token>`");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

/// The client's address for per-address limits: the TCP peer's, or the one a trusted
/// proxy forwarded (see `limits`); 400 `invalid_forwarded_for` when a trusted proxy's
/// `X-Forwarded-For` does not name it. `None` when the router runs without connection
/// info (e.g. `Router::oneshot`), and then no per-address limit applies.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_of(parts, state)?))
    }
}

fn client_of(parts: &Parts, state: &AppState) -> Result<Option<IpAddr>, ApiError> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let trusted = &state.limits().settings().trusted_proxies;
    client_ip(peer, &parts.headers, trusted).map_err(|UnreadableForwardedFor| {
        tracing::warn!(
            peer = ?peer,
            "refused: X-Forwarded-For from a trusted proxy does not name the client"
        );
        ApiError::transport(
            StatusCode::BAD_REQUEST,
            "invalid_forwarded_for",
            "X-Forwarded-For must end with the client's IP address (the entries the trusted \
             proxies added): this one holds something else there",
        )
    })
}

/// A WebSocket upgrade's `Origin`, checked when the server has a list of allowed origins
/// (`--cors-origin`): a browser page from an origin that is neither in the list nor this
/// server's own (the same host and port as the request's `Host`) is refused with 403
/// `origin_not_allowed`. Without a list, or without an `Origin` header (clients that
/// are not browsers send none), anything passes.
#[derive(Debug, Clone, Copy)]
pub struct AllowedOrigin;

impl FromRequestParts<AppState> for AllowedOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let allowed = state.cors_origins();
        let Some(origin) = parts.headers.get(ORIGIN) else {
            return Ok(AllowedOrigin);
        };
        if allowed.is_empty()
            || allowed.iter().any(|a| a.as_bytes() == origin.as_bytes())
            || same_host(origin.as_bytes(), &parts.headers)
        {
            return Ok(AllowedOrigin);
        }
        tracing::info!(
            origin = ?String::from_utf8_lossy(origin.as_bytes()),
            "WebSocket upgrade refused: origin not allowed"
        );
        Err(ApiError::transport(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "WebSocket connections are accepted only from this server's own pages and the \
             origins it allows (--cors-origin)",
        ))
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to. A
/// `Host` without a port matches the origin's port, whatever it is (a proxy in front
/// may have dropped it).
fn same_host(origin: &[u8], headers: &HeaderMap) -> bool {
    let Ok(origin) = Uri::try_from(origin) else {
        return false;
    };
    let (Some(scheme), Some(origin)) = (origin.scheme_str(), origin.authority()) else {
        return false;
    };
    let Some(host) = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
    else {
        return false;
    };
    let default_port = match scheme {
        "https" | "wss" => 443,
        _ => 80,
    };
    let origin_port = origin.port_u16().unwrap_or(default_port);
    origin.host().eq_ignore_ascii_case(host.host())
        && host.port_u16().is_none_or(|port| port == origin_port)
}

/// Parses a chat id given in a WebSocket frame with the same rule as in a path.
pub(crate) fn parse_chat_id(s: &str) -> Result<chatcore::ChatId, ApiError> {
    chatcore::ChatId::parse(s).map_err(|_| ApiError::invalid_parameter("chatId must be a UUID"))
}
