//! Remote mode: every operation as a request of the wire contract to a chat-http server,
//! with a bearer token. Error bodies (`{"error":{"code","message"}}`) become
//! [`ApiError`]s; a server that cannot be reached is `unreachable` (exit 6).

use std::time::Duration;

use chatcore::{Chat, Message, Officer};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{CustomerSession, OfficerSession, Page, Sent, Status};
use crate::error::{ApiError, ExitKind};
use crate::ws::{self, Ready};

/// The remote backend.
#[derive(Debug)]
pub(crate) struct Remote {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    /// Whom the token belongs to, when known without asking (a saved login).
    identity: Option<Ready>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: String,
    message: String,
}

/// Percent-encodes one path segment, so that an id with a `/` or `?` stays one segment
/// and the server, not the URL parser, judges it.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Remote {
    /// A backend for the server at `base` (`http://host:port`).
    pub(crate) fn new(
        base: &str,
        token: Option<String>,
        identity: Option<Ready>,
    ) -> anyhow::Result<Self> {
        let base = if base.contains("://") {
            base.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", base.trim_end_matches('/'))
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            base,
            http,
            token,
            identity,
        })
    }

    /// The server's base URL, normalized.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The token, or an auth error telling how to get one.
    pub(crate) fn token(&self) -> Result<&str, ApiError> {
        self.token.as_deref().ok_or_else(|| {
            ApiError::new(
                ExitKind::Auth,
                "unauthorized",
                format!(
                    "no token for {}: run `chat-cli --server {} officer login ID`, or pass \
                     --token / CHAT_TOKEN",
                    self.base, self.base
                ),
            )
        })
    }

    /// Who the token belongs to: from the saved login, else asked over the WebSocket
    /// (the contract's only "who am I": the `ready` frame).
    pub(crate) async fn whoami(&self) -> Result<Ready, ApiError> {
        if let Some(identity) = &self.identity {
            return Ok(identity.clone());
        }
        let (conn, ready) = ws::Connection::open(&self.base, self.token()?).await?;
        conn.close().await;
        Ok(ready)
    }

    /// Whom the token is, for the paths that name the officer acting
    /// (`/api/officers/{officerId}/...`). Whether they may is the server's to say: a
    /// token that is not an officer's gets its 403.
    async fn officer_id(&self) -> Result<String, ApiError> {
        Ok(self.whoami().await?.subject)
    }

    /// One request; the body of a 2xx answer is decoded as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> Result<(StatusCode, T), ApiError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if auth {
            request = request.bearer_auth(self.token()?);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            ApiError::unreachable(format!("cannot reach {}: {}", self.base, error_chain(&e)))
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            ApiError::unreachable(format!("reading the answer of {url}: {}", error_chain(&e)))
        })?;
        if !status.is_success() {
            let body = serde_json::from_slice::<ErrorBody>(&bytes).ok();
            return Err(ApiError::from_http(
                status.as_u16(),
                body.as_ref().map(|b| b.error.code.clone()),
                body.map(|b| b.error.message),
            ));
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                ExitKind::Other,
                "bad_response",
                format!("unexpected answer from {url}: {e}"),
            )
        })?;
        Ok((status, value))
    }

    pub(crate) async fn create_officer(
        &self,
        id: &str,
        password: Option<String>,
        display_name: Option<String>,
    ) -> anyhow::Result<Officer> {
        let mut body = json!({ "id": id });
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        if let Some(n) = display_name {
            body["displayName"] = json!(n);
        }
        // An open-mode server takes this without a token, so send one only if we have it.
        let auth = self.token.is_some();
        Ok(self
            .call(Method::POST, "/api/officers", Some(body), auth)
            .await?
            .1)
    }

    pub(crate) async fn set_officer_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> anyhow::Result<Officer> {
        let action = if disabled { "disable" } else { "enable" };
        let path = format!("/api/officers/{}/{action}", segment(id));
        Ok(self.call(Method::POST, &path, None, true).await?.1)
    }

    pub(crate) async fn officers(&self) -> anyhow::Result<Vec<Officer>> {
        // Not in contract version 1; servers that add it answer here, others 404/405.
        match self.call(Method::GET, "/api/officers", None, true).await {
            Ok((_, list)) => Ok(list),
            Err(e)
                if matches!(
                    e.code.as_str(),
                    "http_404" | "http_405" | "not_found" | "method_not_allowed"
                ) =>
            {
                Err(ApiError::new(
                    ExitKind::Other,
                    "unsupported",
                    "this server has no officer listing (not in contract v1); use --db on its \
                 database",
                )
                .into())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn officer_login(
        &self,
        id: &str,
        password: Option<String>,
    ) -> anyhow::Result<OfficerSession> {
        let mut body = json!({ "officerId": id });
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        Ok(self
            .call(Method::POST, "/api/officers/login", Some(body), false)
            .await?
            .1)
    }

    pub(crate) async fn customer_login(
        &self,
        id: &str,
        officer: Option<String>,
        signature: Option<String>,
    ) -> anyhow::Result<CustomerSession> {
        let mut body = json!({ "customerId": id });
        if let Some(o) = officer {
            body["officerId"] = json!(o);
        }
        if let Some(s) = signature {
            body["signature"] = json!(s);
        }
        Ok(self
            .call(Method::POST, "/api/customers/login", Some(body), false)
            .await?
            .1)
    }

    pub(crate) async fn customer_login_with_identity(
        &self,
        identity_token: &str,
    ) -> anyhow::Result<CustomerSession> {
        let body = json!({ "identityToken": identity_token });
        Ok(self
            .call(Method::POST, "/api/customers/login", Some(body), false)
            .await?
            .1)
    }

    pub(crate) async fn queue(&self) -> anyhow::Result<Vec<Chat>> {
        Ok(self
            .call(Method::GET, "/api/officers/queue", None, true)
            .await?
            .1)
    }

    pub(crate) async fn officer_chats(&self, officer: Option<&str>) -> anyhow::Result<Vec<Chat>> {
        let officer = match officer {
            Some(o) => o.to_string(),
            None => self.officer_id().await?,
        };
        let path = format!("/api/officers/{}/chats", segment(&officer));
        Ok(self.call(Method::GET, &path, None, true).await?.1)
    }

    pub(crate) async fn claim(&self, chat: &str) -> anyhow::Result<Chat> {
        let officer = self.officer_id().await?;
        let path = format!(
            "/api/officers/{}/claim/{}",
            segment(&officer),
            segment(chat)
        );
        Ok(self.call(Method::POST, &path, None, true).await?.1)
    }

    pub(crate) async fn send(
        &self,
        chat: &str,
        content: String,
        client_id: Option<String>,
    ) -> anyhow::Result<Sent> {
        let mut body = json!({ "content": content });
        if let Some(k) = client_id {
            body["clientMessageId"] = json!(k);
        }
        let path = format!("/api/chats/{}/messages", segment(chat));
        let (status, message) = self.call(Method::POST, &path, Some(body), true).await?;
        Ok(Sent {
            message,
            created: status == StatusCode::CREATED,
        })
    }

    pub(crate) async fn messages(&self, chat: &str, page: Page) -> anyhow::Result<Vec<Message>> {
        let mut query = Vec::new();
        if let Some(a) = page.after {
            query.push(format!("after={a}"));
        }
        if let Some(b) = page.before {
            query.push(format!("before={b}"));
        }
        if let Some(l) = page.limit {
            query.push(format!("limit={l}"));
        }
        let mut path = format!("/api/chats/{}/messages", segment(chat));
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        Ok(self.call(Method::GET, &path, None, true).await?.1)
    }

    /// The seq of a chat's newest message (0 if none), for starting a watch from "now"
    /// without a gap on a later reconnect.
    pub(crate) async fn last_seq(&self, chat: &str) -> anyhow::Result<u64> {
        let newest = self
            .messages(
                chat,
                Page {
                    before: Some(i64::MAX as u64),
                    limit: Some(1),
                    ..Page::default()
                },
            )
            .await?;
        Ok(newest.last().map_or(0, |m| m.seq))
    }

    pub(crate) async fn status(&self) -> anyhow::Result<Status> {
        let url = format!("{}/healthz", self.base);
        let response = self.http.get(&url).send().await.map_err(|e| {
            ApiError::unreachable(format!("cannot reach {}: {}", self.base, error_chain(&e)))
        })?;
        if !response.status().is_success() {
            return Err(ApiError::new(
                ExitKind::Other,
                "unhealthy",
                format!(
                    "{url} answered {}: the server cannot reach its store",
                    response.status()
                ),
            )
            .into());
        }
        let (role, subject) = match self.token {
            Some(_) => {
                let me = self.whoami().await?;
                (Some(me.role), Some(me.subject))
            }
            None => (None, None),
        };
        Ok(Status {
            mode: "remote",
            server: Some(self.base.clone()),
            health: "ok",
            role,
            subject,
            ..Status::default()
        })
    }
}

/// reqwest's error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("alice.b_c-1"), "alice.b_c-1");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
    }
}
