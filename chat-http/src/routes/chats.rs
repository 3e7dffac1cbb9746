//! Chat routes: read a chat, page its messages, send one, move a read mark, and change its
//! state (resolve, release, transfer, reopen). Rights, validation, idempotency, the sender's identity and
//! every rule of the lifecycle are decided by `ChatService`.

use axum::extract::State;
use axum::http::StatusCode;
use chatcore::{Chat, ChatId, Message, MessagePage, OfficerId, ReadMark, SendMessage};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Auth, Json, OptionalJson, Path, Query};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat))
        .routes(routes!(messages, send))
        .routes(routes!(resolve))
        .routes(routes!(release))
        .routes(routes!(transfer))
        .routes(routes!(reopen))
        .routes(routes!(read))
}

/// `{ seq }`: the newest entry the reader has seen.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"seq": 7}))]
struct ReadBody {
    seq: u64,
}

/// Moves the reader's read mark forward: the chat's customer, its officer.
#[utoipa::path(post, path = "/api/chats/{chatId}/read", tag = "chats", security(("bearer" = [])),
    params(("chatId" = ChatId, Path, description = "The chat")),
    request_body = ReadBody,
    responses(
        (status = 200, description = "The mark as it now is", body = ReadMark),
        (status = 403, description = "Not a reader of this chat", body = ErrorBody),
        (status = 404, description = "`chat_not_found`", body = ErrorBody),
    ))]
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

/// Resolves the chat: its officer, its customer, the admin.
#[utoipa::path(post, path = "/api/chats/{chatId}/resolve", tag = "lifecycle", security(("bearer" = [])),
    params(("chatId" = ChatId, Path, description = "The chat")),
    responses(
        (status = 200, description = "The chat, resolved", body = Chat),
        (status = 403, description = "Not allowed on this chat", body = ErrorBody),
        (status = 404, description = "`chat_not_found`", body = ErrorBody),
        (status = 409, description = "`not_assigned`, `chat_resolved`, `not_resolved`, `at_capacity`, `customer_has_open_chat`", body = ErrorBody),
    ))]
async fn resolve(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
) -> Result<Json<Chat>, ApiError> {
    Ok(Json(state.service().resolve(&actor, chat).await?))
}

/// Puts the chat back in the queue: its officer, the admin.
#[utoipa::path(post, path = "/api/chats/{chatId}/release", tag = "lifecycle", security(("bearer" = [])),
    params(("chatId" = ChatId, Path, description = "The chat")),
    responses(
        (status = 200, description = "The chat, pending", body = Chat),
        (status = 403, description = "Not allowed on this chat", body = ErrorBody),
        (status = 404, description = "`chat_not_found`", body = ErrorBody),
        (status = 409, description = "`not_assigned`, `chat_resolved`, `not_resolved`, `at_capacity`, `customer_has_open_chat`", body = ErrorBody),
    ))]
async fn release(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
) -> Result<Json<Chat>, ApiError> {
    Ok(Json(state.service().release(&actor, chat).await?))
}

/// `{ officerId }`: whom the chat goes to.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"officerId": "bob"}))]
#[serde(rename_all = "camelCase")]
struct TransferBody {
    officer_id: String,
}

/// Hands the chat to another officer: its officer, the admin.
#[utoipa::path(post, path = "/api/chats/{chatId}/transfer", tag = "lifecycle", security(("bearer" = [])),
    params(("chatId" = ChatId, Path, description = "The chat")),
    request_body = TransferBody,
    responses(
        (status = 200, description = "The chat, assigned to them", body = Chat),
        (status = 403, description = "Not allowed on this chat", body = ErrorBody),
        (status = 404, description = "`chat_not_found`", body = ErrorBody),
        (status = 409, description = "`not_assigned`, `chat_resolved`, `not_resolved`, `at_capacity`, `customer_has_open_chat`", body = ErrorBody),
    ))]
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
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"officerId": "alice"}))]
#[serde(rename_all = "camelCase")]
struct ReopenBody {
    officer_id: Option<String>,
}

/// Opens a resolved chat again, assigned: an officer for themselves, the admin naming one.
#[utoipa::path(post, path = "/api/chats/{chatId}/reopen", tag = "lifecycle", security(("bearer" = [])),
    params(("chatId" = ChatId, Path, description = "The chat")),
    request_body(content = ReopenBody, description = "Optional: no body, or `{ officerId }`"),
    responses(
        (status = 200, description = "The chat, assigned", body = Chat),
        (status = 403, description = "Not allowed on this chat", body = ErrorBody),
        (status = 404, description = "`chat_not_found`", body = ErrorBody),
        (status = 409, description = "`not_assigned`, `chat_resolved`, `not_resolved`, `at_capacity`, `customer_has_open_chat`", body = ErrorBody),
    ))]
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

/// The chat: whoever may read it.
#[utoipa::path(get, path = "/api/chats/{chatId}", tag = "chats", security(("bearer" = [])),
    params(("chatId" = ChatId, Path, description = "The chat")),
    responses(
        (status = 200, description = "The chat", body = Chat),
        (status = 403, description = "Not a reader of this chat", body = ErrorBody),
        (status = 404, description = "`chat_not_found`", body = ErrorBody),
    ))]
async fn chat(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
) -> Result<Json<Chat>, ApiError> {
    Ok(Json(state.service().chat(&actor, chat).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageParams {
    /// Only entries with a greater seq.
    after: Option<u64>,
    /// Only entries with a smaller seq (the newest below it).
    before: Option<u64>,
    /// 1-1000 (default 100).
    limit: Option<u32>,
}

/// A page of the chat's entries, ascending by seq: whoever may read it.
#[utoipa::path(get, path = "/api/chats/{chatId}/messages", tag = "chats", security(("bearer" = [])),
    params(("chatId" = ChatId, Path, description = "The chat"), PageParams),
    responses(
        (status = 200, description = "Entries ascending by seq", body = Vec<Message>),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 403, description = "Not a reader of this chat", body = ErrorBody),
        (status = 404, description = "`chat_not_found`", body = ErrorBody),
    ))]
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

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"content": "Hello, I need help", "clientMessageId": "m-1"}))]
struct SendBody {
    content: String,
    client_message_id: Option<String>,
    sender_type: Option<String>,
    sender_id: Option<String>,
}

/// Sends a message: the chat's customer, its assigned officer.
#[utoipa::path(post, path = "/api/chats/{chatId}/messages", tag = "chats", security(("bearer" = [])),
    params(("chatId" = ChatId, Path, description = "The chat")),
    request_body = SendBody,
    responses(
        (status = 201, description = "The stored message", body = Message),
        (status = 200, description = "A repeated `clientMessageId`: the original", body = Message),
        (status = 403, description = "Not a writer of this chat", body = ErrorBody),
        (status = 409, description = "`chat_resolved`", body = ErrorBody),
        (status = 413, description = "`message_too_large`", body = ErrorBody),
        (status = 422, description = "`empty_content`, `invalid_field`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
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
