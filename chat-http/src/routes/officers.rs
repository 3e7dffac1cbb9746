//! Officer routes: create, log in, the shared queue, an officer's chats, the claim, and
//! the admin's disable and enable. Who may do each is decided by `ChatService`, never
//! here.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use chatcore::{
    Availability, Chat, ChatId, ChatsFilter, NewOfficer, Officer, OfficerId, OfficerSession,
};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Auth, ClientIp, Json, MaybeAuth, Path, Query};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/officers", post(create).get(list))
        .route("/api/officers/login", post(login))
        .route("/api/officers/queue", get(queue))
        .route("/api/officers/{officer_id}/chats", get(chats))
        .route("/api/officers/{officer_id}/claim/{chat_id}", post(claim))
        .route("/api/officers/{officer_id}/disable", post(disable))
        .route("/api/officers/{officer_id}/enable", post(enable))
        .route("/api/officers/{officer_id}/capacity", put(capacity))
        .route("/api/officers/{officer_id}/availability", put(availability))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    id: String,
    password: Option<String>,
    display_name: Option<String>,
    /// Absent or `null`: the server's default.
    #[serde(default)]
    capacity: serde_json::Value,
}

/// Every officer, by id: officers and the admin.
async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<Officer>>, ApiError> {
    Ok(Json(state.service().officers(&actor).await?))
}

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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody {
    officer_id: String,
    password: Option<String>,
}

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

async fn queue(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<Chat>>, ApiError> {
    Ok(Json(state.service().queue(&actor).await?))
}

#[derive(Deserialize)]
struct ChatsParams {
    #[serde(default)]
    status: ChatsFilter,
}

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

#[derive(Deserialize)]
struct CapacityBody {
    /// Required; `null` for the server's default.
    capacity: serde_json::Value,
}

/// Sets an officer's capacity (the admin): `{ "capacity": N }`, or `null` for the
/// server's default. What a capacity may be is the engine's rule; here only its shape.
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

#[derive(Deserialize)]
struct AvailabilityBody {
    availability: String,
}

/// Sets whether an officer takes chats now (that officer, the admin):
/// `{ "availability": "available" | "away" }`.
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

async fn disable(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(officer): Path<OfficerId>,
) -> Result<Json<Officer>, ApiError> {
    Ok(Json(
        state.service().disable_officer(&actor, &officer).await?,
    ))
}

async fn enable(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(officer): Path<OfficerId>,
) -> Result<Json<Officer>, ApiError> {
    Ok(Json(
        state.service().enable_officer(&actor, &officer).await?,
    ))
}
