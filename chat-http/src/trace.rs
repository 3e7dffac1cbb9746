//! The span every request is logged in: method, the URI with the values of secret-looking
//! query parameters replaced by `<redacted>` (a signed customer link's `signature`, an
//! `identityToken`, any `token`, `secret`, `password`, `key` ...), the version and the
//! client's address. Headers are never recorded, so bearer tokens stay out of the logs
//! too. It only describes requests; it must not decide anything about them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{Request, Uri};
use tower_http::trace::MakeSpan;
use tracing::Span;

use crate::limits::client_ip;

/// Makes the request span (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct RequestSpan {
    trusted_proxies: Arc<[IpAddr]>,
}

impl RequestSpan {
    pub(crate) fn new(trusted_proxies: &[IpAddr]) -> Self {
        Self {
            trusted_proxies: trusted_proxies.into(),
        }
    }
}

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        // The fields are computed only when the span is enabled.
        tracing::info_span!(
            "request",
            method = %request.method(),
            uri = %Redacted(request.uri()),
            version = ?request.version(),
            client = %ClientOf {
                request,
                trusted: &self.trusted_proxies,
            },
        )
    }
}

/// The client's address as the per-address limits see it.
struct ClientOf<'a, B> {
    request: &'a Request<B>,
    trusted: &'a [IpAddr],
}

impl<B> fmt::Display for ClientOf<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peer = self
            .request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        match client_ip(peer, self.request.headers(), self.trusted) {
            Ok(Some(ip)) => ip.fmt(f),
            Ok(None) => f.write_str("-"),
            Err(_) => f.write_str("unreadable-x-forwarded-for"),
        }
    }
}

/// A URI for the log: path and query, each query parameter whose name looks like a
/// secret with its value replaced.
pub(crate) struct Redacted<'a>(pub(crate) &'a Uri);

/// Name fragments (lowercase) of query parameters whose values are never logged.
const SECRET_NAMES: &[&str] = &[
    "token",
    "secret",
    "sig",
    "pass",
    "pwd",
    "auth",
    "key",
    "jwt",
    "credential",
    "session",
    "code",
];

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.path())?;
        let Some(query) = self.0.query() else {
            return Ok(());
        };
        f.write_str("?")?;
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            let (name, value) = match pair.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (pair, None),
            };
            if value.is_some_and(|v| !v.is_empty()) && looks_secret(name) {
                write!(f, "{name}=<redacted>")?;
            } else {
                f.write_str(pair)?;
            }
        }
        Ok(())
    }
}

/// Whether a query parameter's name, percent-decoded and lowercased, holds one of
/// [`SECRET_NAMES`].
fn looks_secret(name: &str) -> bool {
    let decoded = percent_decode(name).to_lowercase();
    SECRET_NAMES.iter().any(|s| decoded.contains(s))
}

/// `%XX` escapes and `+` decoded; anything malformed is kept as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(uri: &str) -> String {
        Redacted(&uri.parse().unwrap()).to_string()
    }

    #[test]
    fn secret_looking_query_values_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact("/customer?customerId=c1&signature=abcdef"),
            "/customer?customerId=c1&signature=<redacted>"
        );
        assert_eq!(
            redact("/customer?identityToken=eyJ.x.y"),
            "/customer?identityToken=<redacted>"
        );
        assert_eq!(
            redact("/x?access_token=t&API-KEY=k&Password=p&after=3&limit=2"),
            "/x?access_token=<redacted>&API-KEY=<redacted>&Password=<redacted>&after=3&limit=2"
        );
        // Spelled with escapes, a name is still recognized.
        assert_eq!(
            redact("/x?identity%54oken=t"),
            "/x?identity%54oken=<redacted>"
        );
        assert_eq!(redact("/x?sig%6eature=s&%"), "/x?sig%6eature=<redacted>&%");
        assert_eq!(redact("/api/chats/1/messages"), "/api/chats/1/messages");
        assert_eq!(redact("/x?token&token="), "/x?token&token=");
    }
}
