//! A conversation with HAProxy's runtime API.
//!
//! Each provider call opens one connection and switches it to interactive mode
//! (`prompt`), so that a whole switch — preflight, `set map`, read-back — runs
//! over a single connection instead of one per command. In that mode HAProxy
//! ends every command's reply with a prompt, `\n> `, which is how replies are
//! told apart (a successful `set map` replies with nothing at all).

use std::time::Duration;

use cutover_provider::ProviderError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::settings::Endpoint;

/// What HAProxy prints after each reply in interactive mode.
const PROMPT: &str = "\n> ";

/// A connection to the runtime API, in interactive mode.
pub(crate) struct Session {
    stream: Box<dyn Stream>,
    endpoint: Endpoint,
    timeout: Duration,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Session {
    /// Connect to `endpoint` and enter interactive mode, each step within `timeout`.
    pub async fn open(endpoint: &Endpoint, timeout: Duration) -> Result<Self, ProviderError> {
        // The hint goes into the cause, so that it reads right after it.
        let unreachable = |e: std::io::Error| {
            let hint = match e.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    Some("cutover needs read and write access to the socket")
                }
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    Some("is HAProxy running with `stats socket ... level admin` there?")
                }
                _ => None,
            };
            let cause = match hint {
                Some(hint) => std::io::Error::new(e.kind(), format!("{e} ({hint})")),
                None => e,
            };
            ProviderError::unreachable(endpoint, cause)
        };
        let connect = async {
            // HAProxy's stats socket has a short accept queue: many switches
            // at once see EAGAIN on a unix socket (ECONNREFUSED never means
            // "busy" there). Retry while the timeout lasts; it is not an
            // error of the router.
            let mut pause = Duration::from_millis(2);
            loop {
                let attempt: std::io::Result<Box<dyn Stream>> = match endpoint {
                    Endpoint::Unix(path) => UnixStream::connect(path)
                        .await
                        .map(|s| Box::new(s) as Box<dyn Stream>),
                    Endpoint::Tcp(address) => TcpStream::connect(address.as_str())
                        .await
                        .map(|s| Box::new(s) as Box<dyn Stream>),
                };
                match attempt {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(50));
                    }
                    other => break other,
                }
            }
        };
        let stream = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| ProviderError::timeout(format!("connecting to the {endpoint}"), timeout))?
            .map_err(unreachable)?;
        let mut session = Session {
            stream,
            endpoint: endpoint.clone(),
            timeout,
        };
        session.exchange(&["prompt"]).await?;
        Ok(session)
    }

    /// Send `commands` and return their replies, one per command, without
    /// the trailing prompt. The whole exchange runs within the timeout.
    ///
    /// Replies are read while the commands are still being written:
    /// HAProxy stops reading once its output waits unread (it prompts `+ `
    /// for every line of a payload), so a long exchange written whole
    /// before reading would stall (a whole-map batch of 15,000 entries did).
    pub async fn exchange(&mut self, commands: &[&str]) -> Result<Vec<String>, ProviderError> {
        let what = match commands {
            [] => String::new(),
            [one] => first_line(one).to_string(),
            [first, rest @ ..] => format!("{}` and {} more `", first_line(first), rest.len()),
        };
        let what = format!("the {} answering `{what}`", self.endpoint);
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.exchange_untimed(commands))
            .await
            .map_err(|_| ProviderError::timeout(what, timeout))?
    }

    async fn exchange_untimed(&mut self, commands: &[&str]) -> Result<Vec<String>, ProviderError> {
        let mut request = String::new();
        for command in commands {
            request.push_str(command);
            request.push('\n');
        }
        let (mut reader, mut writer) = tokio::io::split(&mut self.stream);
        let write = async {
            writer.write_all(request.as_bytes()).await?;
            writer.flush().await
        };
        let read = async {
            let mut received = Vec::new();
            let mut buffer = [0u8; 16 * 1024];
            loop {
                let n = reader.read(&mut buffer).await?;
                if n == 0 {
                    return Ok(Err(received));
                }
                received.extend_from_slice(&buffer[..n]);
                if let Some(replies) = split_replies(&received, commands.len()) {
                    return Ok(Ok(replies));
                }
            }
        };
        // The replies, or what came before HAProxy closed the connection.
        let read: std::io::Result<Result<Vec<String>, Vec<u8>>> =
            match tokio::try_join!(write, read) {
                Ok(((), read)) => Ok(read),
                Err(e) => Err(e),
            };
        match read {
            Err(e) => Err(self.broken(e)),
            Ok(Ok(replies)) => Ok(replies),
            Ok(Err(received)) => {
                let text = String::from_utf8_lossy(&received);
                Err(self.broken(format!(
                    "HAProxy closed the connection{}",
                    if text.trim().is_empty() {
                        String::new()
                    } else {
                        format!(" after replying {:?}", cut(text.trim()))
                    }
                )))
            }
        }
    }

    /// The conversation broke off midway: a command sent may or may not
    /// have been carried out, so this is no [`ProviderError::unreachable`].
    fn broken(&self, cause: impl Into<cutover_provider::BoxError>) -> ProviderError {
        ProviderError::failed(format!(
            "the conversation with the {} broke off",
            self.endpoint
        ))
        .with_source(cause)
    }

    /// Leave interactive mode and close the connection politely.
    pub async fn close(mut self) {
        // Best effort: HAProxy cleans up a dropped connection just as well.
        let _ = tokio::time::timeout(self.timeout, self.stream.write_all(b"quit\n")).await;
        let _ = self.stream.shutdown().await;
    }
}

/// A command's first line (a payload's command without its entries).
fn first_line(command: &str) -> &str {
    command.lines().next().unwrap_or_default()
}

/// A reply cut to its first 300 characters for a message.
fn cut(text: &str) -> String {
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}... ({} more bytes)", &text[..at], text.len() - at),
        None => text.to_string(),
    }
}

/// Split what HAProxy sent so far into `count` replies, or `None` when more is
/// still to come. A reply is everything before its prompt.
pub(crate) fn split_replies(received: &[u8], count: usize) -> Option<Vec<String>> {
    if count == 0 {
        return Some(Vec::new());
    }
    // Called after every chunk read: the bytes are decoded only once they
    // end with a prompt, not on every chunk (decoding all received so far
    // at each of the chunks of a `show map` of 5,000 keys made an exchange
    // quadratic in its reply). A text ends with the prompt exactly when its
    // bytes do: decoding replaces only what is not UTF-8.
    if !received.ends_with(PROMPT.as_bytes()) {
        return None;
    }
    let text = String::from_utf8_lossy(received);
    let mut replies: Vec<String> = text[..text.len() - PROMPT.len()]
        .split(PROMPT)
        .map(str::to_string)
        .collect();
    if replies.len() < count {
        return None;
    }
    // More parts than commands means a reply held `\n> ` itself (a map value
    // starting with `> `, say). Replies come in order, so glue the surplus
    // back onto the last one rather than misreading the answer.
    let tail = replies.split_off(count - 1).join(PROMPT);
    replies.push(tail);
    Some(replies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_split_on_prompts() {
        let received = b"# name\nblue\ngreen\n\n> \n> entry not found.\n\n> ";
        assert_eq!(
            split_replies(received, 3).unwrap(),
            vec![
                "# name\nblue\ngreen\n".to_string(),
                String::new(),
                "entry not found.\n".to_string()
            ]
        );
    }

    #[test]
    fn incomplete_reply_waits_for_more() {
        assert_eq!(split_replies(b"# name\nblue\n", 1), None);
        assert_eq!(split_replies(b"\n> ", 2), None);
    }
}
