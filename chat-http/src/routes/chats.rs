//! Chat routes: read a chat, page its messages, send one, move a read mark, and change its
//! state (resolve, release, transfer, reopen). Rights, validation, idempotency, the sender's identity and
//! every rule of the lifecycle are decided by `ChatService`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chatcore::{Chat, ChatId, Message, MessagePage, OfficerId, ReadMark, SendMessage};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Auth, Json, OptionalJson, Path, Query};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/chats/{chat_id}", get(chat))
        .route("/api/chats/{chat_id}/messages", get(messages).post(send))
        .route("/api/chats/{chat_id}/resolve", post(resolve))
        .route("/api/chats/{chat_id}/release", post(release))
        .route("/api/chats/{chat_id}/transfer", post(transfer))
        .route("/api/chats/{chat_id}/reopen", post(reopen))
        .route("/api/chats/{chat_id}/read", post(read))
}

/// `{ seq }`: the newest entry the reader has seen.
#[derive(Deserialize)]
struct ReadBody {
    seq: u64,
}

async fn read(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
    Json(body): Json<ReadBody>,
) -> Result<Json<ReadMark>, ApiError> {
    Ok(Json(
        state.service().mark_read(&actor, chat, body.seq).await?,
    ))
}

async fn resolve(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
) -> Result<Json<Chat>, ApiError> {
    Ok(Json(state.service().resolve(&actor, chat).await?))
}

async fn release(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
) -> Result<Json<Chat>, ApiError> {
    Ok(Json(state.service().release(&actor, chat).await?))
}

/// `{ officerId }`: whom the chat goes to.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferBody {
    officer_id: String,
}

async fn transfer(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
    Json(body): Json<TransferBody>,
) -> Result<Json<Chat>, ApiError> {
    let to = OfficerId::parse(&body.officer_id)?;
    Ok(Json(state.service().transfer(&actor, chat, &to).await?))
}

/// `{ officerId? }`: the admin names the officer; an officer reopens for themselves.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReopenBody {
    officer_id: Option<String>,
}

async fn reopen(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
    OptionalJson(body): OptionalJson<ReopenBody>,
) -> Result<Json<Chat>, ApiError> {
    let officer = body
        .and_then(|b| b.officer_id)
        .map(|id| OfficerId::parse(&id))
        .transpose()?;
    Ok(Json(
        state
            .service()
            .reopen(&actor, chat, officer.as_ref())
            .await?,
    ))
}

async fn chat(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
) -> Result<Json<Chat>, ApiError> {
    Ok(Json(state.service().chat(&actor, chat).await?))
}

#[derive(Deserialize)]
struct PageParams {
    after: Option<u64>,
    before: Option<u64>,
    limit: Option<u32>,
}

async fn messages(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
    Query(page): Query<PageParams>,
) -> Result<Json<Vec<Message>>, ApiError> {
    let page = MessagePage {
        after: page.after,
        before: page.before,
        limit: page.limit,
    };
    Ok(Json(state.service().messages(&actor, chat, page).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendBody {
    content: String,
    client_message_id: Option<String>,
    sender_type: Option<String>,
    sender_id: Option<String>,
}

async fn send(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
    Json(body): Json<SendBody>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let request = SendMessage {
        content: body.content,
        client_message_id: body.client_message_id,
        claimed_sender_type: body.sender_type,
        claimed_sender_id: body.sender_id,
    };
    let sent = state.service().send_message(&actor, chat, request).await?;
    // A repeated clientMessageId stored nothing: 200 with the original message.
    let status = if sent.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(sent.message)))
}
