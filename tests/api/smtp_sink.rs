//! A real SMTP server on loopback that accepts every message and keeps it for the test to read.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

pub struct SmtpSink {
    pub url: String,
    messages: Arc<Mutex<Vec<Received>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP sink");
        let port = listener.local_addr().expect("addr").port();
        let messages: Arc<Mutex<Vec<Received>>> = Arc::default();
        let store = messages.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(socket, store).await;
                });
            }
        });
        SmtpSink { url: format!("smtp://127.0.0.1:{port}"), messages, _task: task }
    }

    pub fn messages(&self) -> Vec<Received> {
        self.messages.lock().expect("messages").clone()
    }

    /// The one-time code (`XXXXX-XXXXX`) in the last message sent to `to`.
    pub fn last_code_for(&self, to: &str) -> Option<String> {
        let message = self.messages().into_iter().rev().find(|m| m.to.iter().any(|t| t.contains(to)))?;
        find_code(&message.data)
    }
}

fn find_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let is_code_char = |b: u8| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b);
    (0..bytes.len().saturating_sub(10)).find_map(|i| {
        let window = &bytes[i..i + 11];
        let boundary_before = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let boundary_after = bytes.get(i + 11).is_none_or(|b| !b.is_ascii_alphanumeric());
        (boundary_before
            && boundary_after
            && window[5] == b'-'
            && window[..5].iter().all(|b| is_code_char(*b))
            && window[6..].iter().all(|b| is_code_char(*b)))
        .then(|| String::from_utf8_lossy(window).into_owned())
    })
}

async fn session(socket: tokio::net::TcpStream, store: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP ready\r\n").await?;
    let mut to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let command = line.to_ascii_uppercase();
        if command.starts_with("EHLO") || command.starts_with("HELO") {
            write.write_all(b"250-sink greets you\r\n250 8BITMIME\r\n").await?;
        } else if command.starts_with("MAIL FROM") {
            to.clear();
            write.write_all(b"250 2.1.0 Ok\r\n").await?;
        } else if command.starts_with("RCPT TO") {
            to.push(line[8..].trim().to_owned());
            write.write_all(b"250 2.1.5 Ok\r\n").await?;
        } else if command == "DATA" {
            write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut data = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push_str(&line);
                data.push('\n');
            }
            store.lock().expect("messages").push(Received { to: to.clone(), data });
            write.write_all(b"250 2.0.0 Ok: queued as SINK1\r\n").await?;
        } else if command == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            break;
        } else {
            write.write_all(b"250 Ok\r\n").await?;
        }
    }
    Ok(())
}
