//! Asking the running workers what they loaded, through the include's marker
//! server.
//!
//! One small HTTP/1.0 request over loopback; a dependency on an HTTP client
//! would buy nothing for a `GET` whose answer is two words.

use std::net::SocketAddr;
use std::time::Duration;

use cutover_provider::ProviderError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::include::parse_marker_body;
use crate::settings::Owned;

/// What a marker answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `<colour> <generation>`: a worker serves this include.
    Serves {
        /// The colour.
        colour: String,
        /// The generation of the include the worker loaded.
        generation: String,
    },
    /// Something else answered: the workers have not loaded this include
    /// (or another server holds the port).
    Other(String),
}

/// GET the marker of `owned` at `addr`.
pub(crate) async fn ask(
    addr: SocketAddr,
    owned: &Owned,
    timeout: Duration,
) -> Result<Answer, ProviderError> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
            owned.location, owned.server_name
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ProviderError::timeout(format!("nginx's cutover marker at {addr}"), timeout))?
        .map_err(|e| {
            let hint = format!(
                "{e}; is nginx running, and does its configuration include {}?",
                owned.path.display()
            );
            ProviderError::unreachable(
                format!("nginx's cutover marker at {addr}"),
                std::io::Error::new(e.kind(), hint),
            )
        })?;
    Ok(interpret(&String::from_utf8_lossy(&response)))
}

fn interpret(response: &str) -> Answer {
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
    let status = head.split_whitespace().nth(1);
    match (status, parse_marker_body(body)) {
        (Some("200"), Some((colour, generation))) => Answer::Serves { colour, generation },
        _ => Answer::Other(head.lines().next().unwrap_or_default().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(
            interpret("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ngreen 42\n"),
            Answer::Serves {
                colour: "green".into(),
                generation: "42".into()
            }
        );
        assert_eq!(
            interpret("HTTP/1.1 404 Not Found\r\n\r\n<html>"),
            Answer::Other("HTTP/1.1 404 Not Found".into())
        );
        assert_eq!(interpret(""), Answer::Other(String::new()));
    }
}
