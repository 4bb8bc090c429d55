//! HTTP requests to Caddy's admin API, over TCP or a unix socket.
//!
//! hyper is used directly rather than reqwest for two reasons measured on
//! Caddy 2.6.2: `GET /config/...` sends the config's ETag as an HTTP *trailer*
//! (`Trailer: ETag`, chunked body), which reqwest does not expose, and the
//! admin API is often a unix socket. Every request opens its own connection:
//! Caddy closes the connection after each config change anyway.

use std::time::Duration;

use cutover_provider::ProviderError;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, ETAG, HOST, IF_MATCH};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use crate::settings::Admin;

/// A client of one admin endpoint.
#[derive(Debug, Clone)]
pub(crate) struct AdminApi {
    admin: Admin,
    timeout: Duration,
}

/// Caddy's answer to one request.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body, as sent.
    pub body: Bytes,
    /// The ETag, from the trailers (Caddy 2.6) or the headers.
    pub etag: Option<String>,
}

impl Reply {
    /// Caddy's error text: the `error` of its JSON error body, or the body.
    pub fn error_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string())
    }
}

/// How one attempt at a request failed.
enum Attempt {
    /// Connected, then the exchange broke off (Caddy replacing its admin
    /// server after a change resets connections).
    BrokeOff(ProviderError),
    /// Anything else.
    Failed(ProviderError),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl AdminApi {
    /// A client of `admin`, each request within `timeout`.
    pub fn new(admin: Admin, timeout: Duration) -> Self {
        AdminApi { admin, timeout }
    }

    /// What this client talks to, for messages.
    pub fn describe(&self) -> String {
        self.admin.to_string()
    }

    /// Send one request; `if_match` guards a change with an ETag. The whole
    /// request, retries included, runs within the timeout.
    ///
    /// Caddy 2.6 replaces its admin server after every config change, so a
    /// connection opened just then may be reset mid-request: a `GET` that
    /// breaks off after connecting is sent again (it changes nothing). A
    /// change never is: whether Caddy applied it is read back instead.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        if_match: Option<&str>,
    ) -> Result<Reply, ProviderError> {
        let what = format!("the {} answering {method} {path}", self.admin);
        let attempts = async {
            let mut pause = Duration::from_millis(10);
            loop {
                match self
                    .request_untimed(method.clone(), path, body, if_match)
                    .await
                {
                    Err(Attempt::BrokeOff(_)) if method == Method::GET => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(200));
                    }
                    Err(Attempt::BrokeOff(e) | Attempt::Failed(e)) => return Err(e),
                    Ok(reply) => return Ok(reply),
                }
            }
        };
        tokio::time::timeout(self.timeout, attempts)
            .await
            .map_err(|_| ProviderError::timeout(what, self.timeout))?
    }

    async fn request_untimed(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        if_match: Option<&str>,
    ) -> Result<Reply, Attempt> {
        let stream = self.connect().await.map_err(Attempt::Failed)?;
        // Connected, so not unreachable: the exchange broke off midway.
        let broken = |e: hyper::Error| {
            Attempt::BrokeOff(
                ProviderError::failed(format!("the {} broke off {method} {path}", self.admin))
                    .with_source(e),
            )
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(broken)?;
        tokio::spawn(async move {
            // Errors surface through `send_request` and the body.
            let _ = connection.await;
        });
        // Caddy refuses a Host it does not expect (DNS rebinding protection):
        // on TCP it accepts its listen address, on a unix socket only an
        // empty Host.
        let host = match &self.admin {
            Admin::Tcp(address) => HeaderValue::from_str(address).map_err(|e| {
                Attempt::Failed(
                    ProviderError::settings(
                        Some("admin".to_string()),
                        format!(
                            "in `caddy` block: `admin` = {address:?} is not a valid Host header"
                        ),
                    )
                    .with_source(e),
                )
            })?,
            Admin::Unix(_) => HeaderValue::from_static(""),
        };
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, host);
        if let Some(tag) = if_match {
            builder = builder.header(IF_MATCH, tag);
        }
        let payload = match body {
            Some(value) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Bytes::from(value.to_string())
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(payload)).map_err(|e| {
            Attempt::Failed(
                ProviderError::failed(format!("cannot build {method} {path}")).with_source(e),
            )
        })?;
        let response = sender.send_request(request).await.map_err(broken)?;
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.map_err(broken)?;
        let header_etag = parts.headers.get(ETAG).cloned();
        let etag = collected
            .trailers()
            .and_then(|t| t.get(ETAG).cloned())
            .or(header_etag)
            .and_then(|v| v.to_str().ok().map(str::to_string));
        Ok(Reply {
            status: parts.status,
            body: collected.to_bytes(),
            etag,
        })
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, ProviderError> {
        let connected: std::io::Result<Box<dyn Stream>> = match &self.admin {
            Admin::Unix(path) => UnixStream::connect(path)
                .await
                .map(|s| Box::new(s) as Box<dyn Stream>),
            Admin::Tcp(address) => TcpStream::connect(address.as_str())
                .await
                .map(|s| Box::new(s) as Box<dyn Stream>),
        };
        connected.map_err(|e| {
            // The hint goes into the cause, so that it reads right after it.
            let hint = match e.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    Some("cutover needs read and write access to the socket")
                }
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    Some("is Caddy running with `admin.listen` set to this address?")
                }
                _ => None,
            };
            let cause = match hint {
                Some(hint) => std::io::Error::new(e.kind(), format!("{e} ({hint})")),
                None => e,
            };
            ProviderError::unreachable(&self.admin, cause)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &str) -> Reply {
        Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: Bytes::from(body.to_string()),
            etag: None,
        }
    }

    #[test]
    fn error_text_is_caddys_message() {
        let json = r#"{"error":"loading new config: unknown module: http.handlers.x"}"#;
        assert_eq!(
            reply(json).error_text(),
            "loading new config: unknown module: http.handlers.x"
        );
        assert_eq!(reply("plain failure\n").error_text(), "plain failure");
    }
}
