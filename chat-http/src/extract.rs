//! Extractors whose rejections speak the contract: a JSON body (`invalid_body`, or
//! `body_too_large`), path and query parameters (`invalid_parameter`), the bearer token
//! resolved to a `chatcore::Actor` through `ChatService::authenticate`, and the client's
//! address for per-address limits. They parse and authenticate only; whether the actor
//! may do anything is the service's call.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chatcore::Actor;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::limits::client_ip;
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
                Err(ApiError::invalid_parameter(e.body_text()))
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
        Ok(Auth(authenticate(state, token).await?))
    }
}

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts)? {
            Some(token) => Ok(MaybeAuth(authenticate(state, token).await?)),
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
        authenticate(state, token).await?;
        Ok(AuthToken(token.to_string()))
    }
}

async fn authenticate(state: &AppState, token: &str) -> Result<Actor, ApiError> {
    Ok(state.service().authenticate(token).await?.actor)
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
/// proxy forwarded (see `limits`). `None` when the router runs without connection info
/// (e.g. `Router::oneshot`), and then no per-address limit applies.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let trusted = &state.limits().settings().trusted_proxies;
        Ok(ClientIp(client_ip(peer, &parts.headers, trusted)))
    }
}

/// Parses a chat id given in a WebSocket frame with the same rule as in a path.
pub(crate) fn parse_chat_id(s: &str) -> Result<chatcore::ChatId, ApiError> {
    chatcore::ChatId::parse(s).map_err(|_| ApiError::invalid_parameter("chatId must be a UUID"))
}
