//! Chat routes: read a chat, page its messages, send one. Rights, validation,
//! idempotency and the sender's identity are all decided by `ChatService`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use chatcore::{Chat, ChatId, Message, MessagePage, SendMessage};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Auth, Json, Path, Query};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/chats/{chat_id}", get(chat))
        .route("/api/chats/{chat_id}/messages", get(messages).post(send))
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
