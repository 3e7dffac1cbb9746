//! Remote mode: every operation as a request of the wire contract to a chat-http server,
//! through `chat_client`. Its typed refusals become [`ApiError`]s (the contract's code
//! and an exit code); a server that cannot be reached is `unreachable` (exit 6).

use std::path::Path;

use chat_client::{Client, Identity};
use chatcore::{Chat, ChatsFilter, Message, Officer};

use super::{CustomerSession, Incoming, OfficerSession, Outgoing, Page, Sent, Status};
use crate::error::{ApiError, ExitKind};

/// The remote backend.
#[derive(Debug)]
pub(crate) struct Remote {
    client: Client,
    /// Whom the token belongs to, when known without asking (a saved login).
    identity: Option<Identity>,
}

impl Remote {
    /// A backend for the server at `base` (`http://host:port`, `https://host`, or
    /// `host:port`), trusting the CA certificates in the PEM file `ca` as well as the
    /// system's for `https`. A `ca` that cannot be read or holds no certificate is a
    /// usage error.
    pub(crate) fn new(
        base: &str,
        token: Option<String>,
        identity: Option<Identity>,
        ca: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let mut builder = Client::builder(base);
        if let Some(token) = token {
            builder = builder.token(token);
        }
        if let Some(path) = ca {
            let pem = std::fs::read(path)
                .map_err(|e| ApiError::usage(format!("--ca {}: {e}", path.display())))?;
            builder = builder.ca_pem(pem);
        }
        let client = builder.build().map_err(|e| match (e, ca) {
            // Building makes no request: a TLS error here is the CA file's.
            (chat_client::Error::Tls { reason, .. }, Some(path)) => {
                ApiError::usage(format!("--ca {}: {reason}", path.display()))
            }
            (e, _) => self_error(base, e),
        })?;
        Ok(Self { client, identity })
    }

    /// The server's base URL, normalized.
    pub(crate) fn base(&self) -> &str {
        self.client.base()
    }

    /// The client, for what streams (`watch`).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// A client error as the CLI reports it.
    pub(crate) fn error(&self, e: chat_client::Error) -> ApiError {
        self_error(self.client.base(), e)
    }

    /// Who the token belongs to: from the saved login, else asked (`GET /api/me`; a
    /// server of contract version 1 has none, and its WebSocket's `ready` frame says).
    pub(crate) async fn whoami(&self) -> Result<Identity, ApiError> {
        if let Some(identity) = &self.identity {
            return Ok(identity.clone());
        }
        match self.client.me().await {
            Ok(me) => Ok(Identity {
                role: me.role,
                subject: me.subject,
            }),
            Err(e) if matches!(e.status(), Some(404 | 405)) => {
                self.client.whoami().await.map_err(|e| self.error(e))
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// Who the token is, as the server says now (`GET /api/me`).
    pub(crate) async fn me(&self) -> anyhow::Result<chatcore::Me> {
        Ok(self.client.me().await.map_err(|e| self.error(e))?)
    }

    /// Whom the token is, for the paths that name the officer acting
    /// (`/api/officers/{officerId}/...`). Whether they may is the server's to say: a
    /// token that is not an officer's gets its 403.
    async fn officer_id(&self) -> Result<String, ApiError> {
        Ok(self.whoami().await?.subject)
    }

    /// The token's own id, for a command that lists its own by default (`chats`,
    /// `customer chats`): only a token of that role has one; any other is a usage error
    /// rather than a list of someone who happens to share the id.
    async fn own_id(&self, role: &str, what: &str) -> Result<String, ApiError> {
        let me = self.whoami().await?;
        if me.role != role {
            return Err(ApiError::usage(format!(
                "{what} needs a {role}'s token (this one is the {}'s): name one",
                me.role
            )));
        }
        Ok(me.subject)
    }

    pub(crate) async fn create_officer(
        &self,
        id: &str,
        password: Option<String>,
        display_name: Option<String>,
    ) -> anyhow::Result<Officer> {
        let created = self
            .client
            .create_officer(id, password.as_deref(), display_name.as_deref())
            .await;
        Ok(created.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn set_availability(
        &self,
        id: Option<&str>,
        availability: chatcore::Availability,
    ) -> anyhow::Result<Officer> {
        let id = match id {
            Some(id) => id.to_string(),
            None => {
                self.own_id("officer", "`officer availability` without --officer")
                    .await?
            }
        };
        let officer = self.client.set_availability(&id, availability).await;
        Ok(officer.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn set_capacity(
        &self,
        id: &str,
        capacity: Option<u32>,
    ) -> anyhow::Result<Officer> {
        let officer = self.client.set_capacity(id, capacity).await;
        Ok(officer.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn set_officer_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> anyhow::Result<Officer> {
        let officer = self.client.set_officer_disabled(id, disabled).await;
        Ok(officer.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn officers(&self) -> anyhow::Result<Vec<Officer>> {
        // Not in contract version 1; servers that add it answer here, others 404/405.
        match self.client.officers().await {
            Ok(list) => Ok(list),
            Err(e) if matches!(e.status(), Some(404 | 405)) => Err(ApiError::new(
                ExitKind::Other,
                "unsupported",
                "this server has no officer listing (not in contract v1); use --db on its \
                 database",
            )
            .into()),
            Err(e) => Err(self.error(e).into()),
        }
    }

    pub(crate) async fn officer_login(
        &self,
        id: &str,
        password: Option<String>,
    ) -> anyhow::Result<OfficerSession> {
        let session = self.client.officer_login(id, password.as_deref()).await;
        Ok(session.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn customer_login(
        &self,
        id: &str,
        officer: Option<String>,
        signature: Option<String>,
    ) -> anyhow::Result<CustomerSession> {
        let session = self
            .client
            .customer_login(id, officer.as_deref(), signature.as_deref())
            .await;
        Ok(session.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn customer_login_with_identity(
        &self,
        identity_token: &str,
    ) -> anyhow::Result<CustomerSession> {
        let session = self
            .client
            .customer_login_with_identity(identity_token)
            .await;
        Ok(session.map_err(|e| self.error(e))?)
    }

    /// Revokes the token on the server (`POST /api/logout`).
    pub(crate) async fn logout(&self) -> Result<(), ApiError> {
        self.client.logout().await.map_err(|e| self.error(e))
    }

    pub(crate) async fn queue(&self) -> anyhow::Result<Vec<Chat>> {
        Ok(self.client.queue().await.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn officer_chats(
        &self,
        officer: Option<&str>,
        filter: ChatsFilter,
    ) -> anyhow::Result<Vec<Chat>> {
        let officer = match officer {
            Some(o) => o.to_string(),
            None => self.own_id("officer", "`chats` without an OFFICER").await?,
        };
        let chats = self.client.officer_chats(&officer, filter).await;
        Ok(chats.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn customer_chats(&self, customer: Option<&str>) -> anyhow::Result<Vec<Chat>> {
        let customer = match customer {
            Some(c) => c.to_string(),
            None => {
                self.own_id("customer", "`customer chats` without an ID")
                    .await?
            }
        };
        let chats = self.client.customer_chats(&customer).await;
        Ok(chats.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn claim(&self, chat: &str) -> anyhow::Result<Chat> {
        let officer = self.officer_id().await?;
        let claimed = self.client.claim(&officer, chat).await;
        Ok(claimed.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn resolve(&self, chat: &str) -> anyhow::Result<Chat> {
        Ok(self.client.resolve(chat).await.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn release(&self, chat: &str) -> anyhow::Result<Chat> {
        Ok(self.client.release(chat).await.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn transfer(&self, chat: &str, to: &str) -> anyhow::Result<Chat> {
        let transferred = self.client.transfer(chat, to).await;
        Ok(transferred.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn reopen(&self, chat: &str, officer: Option<&str>) -> anyhow::Result<Chat> {
        let reopened = self.client.reopen(chat, officer).await;
        Ok(reopened.map_err(|e| self.error(e))?)
    }

    pub(crate) async fn send(
        &self,
        chat: &str,
        content: String,
        client_id: Option<String>,
    ) -> anyhow::Result<Sent> {
        let sent = self
            .client
            .send(chat, &content, client_id.as_deref())
            .await
            .map_err(|e| self.error(e))?;
        Ok(Sent {
            message: sent.message,
            created: sent.created,
        })
    }

    pub(crate) async fn attach(&self, chat: &str, file: Outgoing) -> anyhow::Result<Sent> {
        let body = reqwest::Body::wrap_stream(file.body);
        let sent = self
            .client
            .upload(
                chat,
                &file.name,
                file.content_type.as_deref(),
                body,
                file.client_id.as_deref(),
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(Sent {
            message: sent.message,
            created: sent.created,
        })
    }

    pub(crate) async fn download(&self, id: &str) -> anyhow::Result<Incoming> {
        let download = self
            .client
            .download(id, None)
            .await
            .map_err(|e| self.error(e))?;
        let sha256 = download
            .response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_string());
        let name = download
            .disposition
            .as_deref()
            .and_then(file_name_of)
            .unwrap_or_else(|| id.to_string());
        let body = futures_util::StreamExt::map(download.response.bytes_stream(), |chunk| {
            chunk.map_err(std::io::Error::other)
        });
        Ok(Incoming {
            name,
            content_type: download.content_type,
            size: download.length,
            sha256,
            body: Box::pin(body),
        })
    }

    pub(crate) async fn messages(&self, chat: &str, page: Page) -> anyhow::Result<Vec<Message>> {
        let page = chat_client::Page {
            after: page.after,
            before: page.before,
            limit: page.limit,
        };
        let messages = self.client.messages(chat, page).await;
        Ok(messages.map_err(|e| self.error(e))?)
    }

    /// The seq of a chat's newest message (0 if none), for starting a watch from "now"
    /// without a gap on a later reconnect.
    pub(crate) async fn last_seq(&self, chat: &str) -> anyhow::Result<u64> {
        Ok(self
            .client
            .last_seq(chat)
            .await
            .map_err(|e| self.error(e))?)
    }

    pub(crate) async fn status(&self) -> anyhow::Result<Status> {
        match self.client.health().await {
            Ok(()) => {}
            Err(e @ chat_client::Error::Api(_)) => {
                return Err(ApiError::new(
                    ExitKind::Other,
                    "unhealthy",
                    format!(
                        "{}/healthz answered {}: the server cannot reach its store",
                        self.base(),
                        e.status().unwrap_or_default()
                    ),
                )
                .into());
            }
            Err(e) => return Err(self.error(e).into()),
        }
        let (role, subject) = match self.client.token() {
            Some(_) => {
                let me = self.whoami().await?;
                (Some(me.role), Some(me.subject))
            }
            None => (None, None),
        };
        Ok(Status {
            mode: "remote",
            server: Some(self.base().to_string()),
            health: "ok",
            role,
            subject,
            ..Status::default()
        })
    }
}

/// A client error as the CLI reports it: the contract's refusals keep their code and get
/// the exit code of their class; a missing token says how to get one.
fn self_error(base: &str, e: chat_client::Error) -> ApiError {
    use chat_client::Error as E;
    match e {
        E::Api(refusal) => match refusal.status {
            Some(status) => ApiError::from_http(status, Some(refusal.code), Some(refusal.message)),
            None => ApiError::from_ws_code(&refusal.code, Some(&refusal.message)),
        },
        E::NoToken => ApiError::new(
            ExitKind::Auth,
            "unauthorized",
            format!(
                "no token for {base}: run `chat-cli --server {base} officer login ID`, or pass \
                 --token / CHAT_TOKEN"
            ),
        ),
        e @ E::Closed { .. } if e.is_unauthorized() => ApiError::from_ws_code("unauthorized", None),
        E::Tls { url, reason } => ApiError::new(
            ExitKind::Unreachable,
            "tls",
            format!(
                "TLS with {url}: {reason}; if a private CA signed it, give that CA's \
                 certificate with --ca FILE (CHAT_CA)"
            ),
        ),
        e @ (E::Unreachable { .. } | E::Closed { .. }) => ApiError::unreachable(e.to_string()),
        e => ApiError::new(ExitKind::Other, e.code().to_string(), e.to_string()),
    }
}

/// The file name a `Content-Disposition` gives: its `filename*` (RFC 6266, UTF-8,
/// percent-encoded), else its `filename`.
fn file_name_of(disposition: &str) -> Option<String> {
    let part = |key: &str| {
        disposition
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(key))
            .map(str::to_string)
    };
    if let Some(encoded) = part("filename*=UTF-8''") {
        let bytes = encoded.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        return String::from_utf8(out).ok();
    }
    part("filename=").map(|n| n.trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::file_name_of;

    #[test]
    fn file_names_are_read_from_content_disposition() {
        assert_eq!(
            file_name_of("attachment; filename=\"relev_.pdf\"; filename*=UTF-8''relev%C3%A9.pdf")
                .as_deref(),
            Some("relevé.pdf")
        );
        assert_eq!(
            file_name_of("attachment; filename=\"a b.txt\"").as_deref(),
            Some("a b.txt")
        );
        assert_eq!(file_name_of("attachment"), None);
        assert_eq!(file_name_of("attachment; filename*=UTF-8''bad%2"), None);
    }
}
