//! Attachment routes: `POST /api/chats/{chatId}/attachments?name=&clientMessageId=` (the
//! raw file as the body, streamed to the engine as it arrives) and
//! `GET /api/attachments/{attachmentId}` (streamed back, whole or one range, with the
//! headers that keep a browser from running it). Who may send or read, the checks of the
//! bytes and their name, idempotency and the limits are `ChatService`'s; this file turns
//! HTTP into its calls and its answers into HTTP.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::extract::{Request, State};
use axum::http::header::{
    ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, ETAG, EXPECT, IF_RANGE, RANGE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chatcore::{AttachmentId, ByteRange, ChatId, Message, Upload};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::Mutex;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::conn::BodyDeadline;
use crate::download::{Wanted, disposition, wanted};
use crate::error::ApiError;
use crate::extract::{Auth, ClientIp, Json, Path, Query};
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// What a browser may do with a served file: nothing but save it. `sandbox` also denies
/// it scripts and its origin if a browser ever showed it inline.
const SANDBOX: &str = "sandbox; default-src 'none'";

/// How long a refused upload's remaining body is read (and dropped) so that the client,
/// still sending, gets the refusal instead of a reset connection.
const DRAIN_FOR: Duration = Duration::from_secs(5);

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(download))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct UploadParams {
    /// The file's name (required): its extension must agree with its type.
    name: Option<String>,
    /// Idempotency key, as for a message.
    client_message_id: Option<String>,
}

/// Sends a file as a message: as sending a message; the body is the file's raw bytes.
#[utoipa::path(post, path = "/api/chats/{chatId}/attachments", tag = "attachments",
    security(("bearer" = [])),
    params(("chatId" = ChatId, Path, description = "The chat"), UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file's bytes; `Content-Type` is its declared type"),
    responses(
        (status = 201, description = "The message carrying the attachment", body = Message),
        (status = 200, description = "A repeated `clientMessageId`: the original", body = Message),
        (status = 400, description = "`invalid_parameter`, `upload_incomplete`", body = ErrorBody),
        (status = 403, description = "Not a writer of this chat", body = ErrorBody),
        (status = 409, description = "`chat_resolved`", body = ErrorBody),
        (status = 413, description = "`attachment_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_type`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
async fn upload(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Auth(actor): Auth,
    Path(chat): Path<ChatId>,
    Query(params): Query<UploadParams>,
    request: Request,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    state.limits().upload(client)?;
    let Some(name) = params.name else {
        return Err(ApiError::invalid_parameter(
            "name: the file's name is required, as ?name=payslip.pdf",
        ));
    };
    let (parts, body) = request.into_parts();
    // The engine asks a pace of the body instead of the whole-body deadline.
    if let Some(deadline) = parts.extensions.get::<BodyDeadline>() {
        deadline.lift();
    }
    let content_type = match parts.headers.get(CONTENT_TYPE).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v.to_string()),
        Some(Err(_)) => {
            return Err(ApiError::invalid_parameter(
                "Content-Type must be a MIME type such as application/pdf",
            ));
        }
    };
    let length = declared_length(&parts.headers)?;
    let body = Arc::new(Mutex::new(body.into_data_stream()));
    let upload = Upload {
        name,
        content_type,
        length,
        client_message_id: params.client_message_id,
    };
    let sent = state
        .service()
        .send_attachment(&actor, chat, upload, shared_stream(body.clone()))
        .await;
    // A refusal, or a retry answered with the original, may come before the body was
    // read to its end: what is left is read and dropped (for a while, up to a bound), so
    // that a client still sending gets this answer rather than a reset connection. A
    // client that waits for `100 Continue` sends nothing more, and one declaring far
    // more than the limit is not read further.
    let max = state.service().config().attachments.max_bytes;
    let expects = parts.headers.contains_key(EXPECT);
    if !expects && length.is_none_or(|n| n <= max.saturating_mul(2)) {
        drain(&body, max.saturating_mul(2)).await;
    }
    let sent = sent?;
    let status = if sent.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(sent.message)))
}

/// The declared `Content-Length`, if any.
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers
        .get(CONTENT_LENGTH)
        .map(|v| v.to_str().map(str::parse::<u64>))
    {
        None => Ok(None),
        Some(Ok(Ok(n))) => Ok(Some(n)),
        Some(_) => Err(ApiError::invalid_parameter(
            "Content-Length must be a number of bytes",
        )),
    }
}

/// The request body as the engine reads it, while the handler keeps a hold on it to
/// drain it after a refusal.
fn shared_stream(body: Arc<Mutex<BodyDataStream>>) -> chatcore::ByteStream {
    Box::pin(futures_util::stream::unfold(body, |body| async move {
        let next = body.lock().await.next().await?;
        Some((next.map_err(io::Error::other), body))
    }))
}

/// Reads and drops what is left of a refused upload's body, at most `limit` bytes for
/// at most [`DRAIN_FOR`].
async fn drain(body: &Arc<Mutex<BodyDataStream>>, limit: u64) {
    let mut body = body.lock().await;
    let _ = tokio::time::timeout(DRAIN_FOR, async {
        let mut read = 0u64;
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len() as u64;
            if read > limit {
                break;
            }
        }
    })
    .await;
}

/// The file, whole or one `Range`: whoever may read its chat.
#[utoipa::path(get, path = "/api/attachments/{attachmentId}", tag = "attachments",
    security(("bearer" = [])),
    params(("attachmentId" = AttachmentId, Path, description = "The attachment")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 206, description = "A range of it", content_type = "application/octet-stream"),
        (status = 404, description = "`attachment_not_found`", body = ErrorBody),
        (status = 416, description = "`range_not_satisfiable`", body = ErrorBody),
    ))]
async fn download(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<AttachmentId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let service = state.service();
    let readable = service.attachment(&actor, id).await?;
    let file = &readable.attachment;
    let etag = format!("\"{}\"", file.sha256);
    // `If-Range` with another validator asks for the whole file.
    let range_header = match headers.get(IF_RANGE) {
        Some(v) if v.as_bytes() != etag.as_bytes() => None,
        _ => headers.get(RANGE),
    };
    let (status, range) = match wanted(range_header, file.size) {
        Wanted::Whole => (StatusCode::OK, None),
        Wanted::Part(range) => (StatusCode::PARTIAL_CONTENT, Some(range)),
        Wanted::Unsatisfiable => {
            let mut refusal = ApiError::transport(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!(
                    "the file has {} bytes; ask for a range within them",
                    file.size
                ),
            )
            .into_response();
            refusal
                .headers_mut()
                .insert(CONTENT_RANGE, header(&format!("bytes */{}", file.size)));
            return Ok(refusal);
        }
    };
    let read = service.open_attachment(&readable, range).await?;
    let mut response = Response::new(Body::from_stream(read.body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, header(&readable.served_as));
    h.insert(CONTENT_LENGTH, HeaderValue::from(read.range.len()));
    h.insert(CONTENT_DISPOSITION, disposition(&file.name));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(SANDBOX));
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(ETAG, header(&etag));
    if let Some(ByteRange { start, end }) = range {
        h.insert(
            CONTENT_RANGE,
            header(&format!(
                "bytes {start}-{}/{}",
                end.saturating_sub(1),
                read.size
            )),
        );
    }
    Ok(response)
}

/// A header value from text the server made (a MIME type, a number, a hash).
fn header(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}
