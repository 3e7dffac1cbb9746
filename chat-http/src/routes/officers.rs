//! Officer routes: create, log in, the shared queue, an officer's chats, the claim, and
//! the admin's disable and enable. Who may do each is decided by `ChatService`, never
//! here.

use axum::extract::State;
use axum::http::StatusCode;
use chatcore::{
    Availability, Chat, ChatId, ChatsFilter, NewOfficer, Officer, OfficerId, OfficerSession,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Auth, ClientIp, Json, MaybeAuth, Path, Query};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(login))
        .routes(routes!(queue))
        .routes(routes!(chats))
        .routes(routes!(claim))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(capacity))
        .routes(routes!(availability))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": "alice", "password": "correct horse", "displayName": "Alice", "capacity": 5}))]
struct CreateBody {
    /// 1-64 of `[A-Za-z0-9._-]`.
    id: String,
    /// At least 8 characters; none: the officer logs in by id alone (open mode only).
    password: Option<String>,
    display_name: Option<String>,
    /// Absent or `null`: the server's default.
    #[serde(default)]
    #[schema(value_type = Option<u32>)]
    capacity: serde_json::Value,
}

/// Every officer, by id: officers and the admin.
#[utoipa::path(get, path = "/api/officers", tag = "officers", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every officer, by id", body = Vec<Officer>),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A customer", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<Officer>>, ApiError> {
    Ok(Json(state.service().officers(&actor).await?))
}

/// Creates an officer: the admin (anyone in open mode).
#[utoipa::path(post, path = "/api/officers", tag = "officers", security(("bearer" = [])),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The new officer", body = Officer),
        (status = 403, description = "Not the admin", body = ErrorBody),
        (status = 409, description = "`officer_exists`", body = ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_field`", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    MaybeAuth(actor): MaybeAuth,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<Officer>), ApiError> {
    // The id is read as a string first so that a malformed one is the contract's 422
    // `invalid_id`, not a 400 body error.
    let new = NewOfficer {
        id: OfficerId::parse(body.id)?,
        password: body.password,
        display_name: body.display_name,
        capacity: capacity_of(&body.capacity)?,
    };
    let officer = state.service().create_officer(&actor, new).await?;
    Ok((StatusCode::CREATED, Json(officer)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"officerId": "alice", "password": "correct horse"}))]
struct LoginBody {
    officer_id: String,
    password: Option<String>,
}

/// An officer's login: their session token.
#[utoipa::path(post, path = "/api/officers/login", tag = "officers",
    request_body = LoginBody,
    responses(
        (status = 200, description = "The officer and their token", body = OfficerSession),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`officer_disabled`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Json(body): Json<LoginBody>,
) -> Result<Json<OfficerSession>, ApiError> {
    // Failures are limited per officer id by the service and per address here.
    let attempt = state
        .service()
        .officer_login(&body.officer_id, body.password.as_deref());
    let session = state
        .limits()
        .login(client, &body.officer_id, attempt)
        .await?;
    Ok(Json(session))
}

/// The queue: pending chats, oldest first.
#[utoipa::path(get, path = "/api/officers/queue", tag = "officers", security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending chats, oldest first", body = Vec<Chat>),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A customer", body = ErrorBody),
    ))]
async fn queue(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<Chat>>, ApiError> {
    Ok(Json(state.service().queue(&actor).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ChatsParams {
    /// `open` (the default), `resolved` or `all`.
    #[serde(default)]
    status: ChatsFilter,
}

/// An officer's chats, newest activity first: that officer, the admin.
#[utoipa::path(get, path = "/api/officers/{officerId}/chats", tag = "officers",
    security(("bearer" = [])),
    params(("officerId" = OfficerId, Path, description = "The officer"), ChatsParams),
    responses(
        (status = 200, description = "Their chats", body = Vec<Chat>),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 403, description = "Another officer, a customer", body = ErrorBody),
    ))]
async fn chats(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(officer): Path<OfficerId>,
    Query(params): Query<ChatsParams>,
) -> Result<Json<Vec<Chat>>, ApiError> {
    let chats = state
        .service()
        .officer_chats(&actor, &officer, params.status)
        .await?;
    Ok(Json(chats))
}

/// Claims a pending chat: that officer.
#[utoipa::path(post, path = "/api/officers/{officerId}/claim/{chatId}", tag = "officers",
    security(("bearer" = [])),
    params(
        ("officerId" = OfficerId, Path, description = "The officer claiming"),
        ("chatId" = ChatId, Path, description = "The chat"),
    ),
    responses(
        (status = 200, description = "The chat, now theirs", body = Chat),
        (status = 404, description = "`chat_not_found`", body = ErrorBody),
        (status = 409, description = "`already_assigned`, `chat_resolved`, `at_capacity`", body = ErrorBody),
    ))]
async fn claim(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((officer, chat)): Path<(OfficerId, ChatId)>,
) -> Result<Json<Chat>, ApiError> {
    Ok(Json(state.service().claim(&actor, &officer, chat).await?))
}

/// Disabling revokes every session of the officer; their sockets close on every node.
/// A capacity as JSON: `null` (the server's default) or a whole number of chats. Its
/// range is the engine's rule.
fn capacity_of(value: &serde_json::Value) -> Result<Option<u32>, chatcore::Error> {
    match value {
        serde_json::Value::Null => Ok(None),
        value => value
            .as_u64()
            .map(|n| Some(u32::try_from(n).unwrap_or(u32::MAX)))
            .ok_or_else(|| chatcore::Error::InvalidField {
                name: "capacity",
                reason: "must be a whole number of chats, or null".into(),
            }),
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"capacity": 5}))]
struct CapacityBody {
    /// Required; `null` for the server's default.
    #[schema(value_type = Option<u32>, required)]
    capacity: serde_json::Value,
}

/// Sets an officer's capacity (the admin): `{ "capacity": N }`, or `null` for the
/// server's default. What a capacity may be is the engine's rule; here only its shape.
#[utoipa::path(put, path = "/api/officers/{officerId}/capacity", tag = "officers",
    security(("bearer" = [])),
    params(("officerId" = OfficerId, Path, description = "The officer")),
    request_body = CapacityBody,
    responses(
        (status = 200, description = "The officer", body = Officer),
        (status = 403, description = "Not the admin", body = ErrorBody),
        (status = 404, description = "`officer_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_field`", body = ErrorBody),
    ))]
async fn capacity(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(officer): Path<OfficerId>,
    Json(body): Json<CapacityBody>,
) -> Result<Json<Officer>, ApiError> {
    let capacity = capacity_of(&body.capacity)?;
    let officer = state
        .service()
        .set_capacity(&actor, &officer, capacity)
        .await?;
    Ok(Json(officer))
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"availability": "away"}))]
struct AvailabilityBody {
    /// `available` or `away`.
    availability: String,
}

/// Sets whether an officer takes chats now (that officer, the admin):
/// `{ "availability": "available" | "away" }`.
#[utoipa::path(put, path = "/api/officers/{officerId}/availability", tag = "officers",
    security(("bearer" = [])),
    params(("officerId" = OfficerId, Path, description = "The officer")),
    request_body = AvailabilityBody,
    responses(
        (status = 200, description = "The officer", body = Officer),
        (status = 403, description = "Another officer, a customer", body = ErrorBody),
        (status = 422, description = "`invalid_field`", body = ErrorBody),
    ))]
async fn availability(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(officer): Path<OfficerId>,
    Json(body): Json<AvailabilityBody>,
) -> Result<Json<Officer>, ApiError> {
    let availability =
        Availability::parse(&body.availability).ok_or_else(|| chatcore::Error::InvalidField {
            name: "availability",
            reason: "must be \"available\" or \"away\"".into(),
        })?;
    let officer = state
        .service()
        .set_availability(&actor, &officer, availability)
        .await?;
    Ok(Json(officer))
}

/// Disables an officer (the admin): their sessions are revoked on every node.
#[utoipa::path(post, path = "/api/officers/{officerId}/disable", tag = "officers",
    security(("bearer" = [])),
    params(("officerId" = OfficerId, Path, description = "The officer")),
    responses(
        (status = 200, description = "The officer, disabled", body = Officer),
        (status = 403, description = "Not the admin", body = ErrorBody),
        (status = 404, description = "`officer_not_found`", body = ErrorBody),
    ))]
async fn disable(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(officer): Path<OfficerId>,
) -> Result<Json<Officer>, ApiError> {
    Ok(Json(
        state.service().disable_officer(&actor, &officer).await?,
    ))
}

/// Enables an officer again (the admin).
#[utoipa::path(post, path = "/api/officers/{officerId}/enable", tag = "officers",
    security(("bearer" = [])),
    params(("officerId" = OfficerId, Path, description = "The officer")),
    responses(
        (status = 200, description = "The officer, enabled", body = Officer),
        (status = 403, description = "Not the admin", body = ErrorBody),
        (status = 404, description = "`officer_not_found`", body = ErrorBody),
    ))]
async fn enable(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(officer): Path<OfficerId>,
) -> Result<Json<Officer>, ApiError> {
    Ok(Json(
        state.service().enable_officer(&actor, &officer).await?,
    ))
}
