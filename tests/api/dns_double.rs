//! A DNS server on loopback answering TXT queries from a table, so that handles on "external"
//! domains can be resolved in tests without the internet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

pub struct DnsDouble {
    pub addr: std::net::SocketAddr,
    records: Arc<Mutex<HashMap<String, String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl DnsDouble {
    pub async fn start() -> DnsDouble {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind DNS double");
        let addr = socket.local_addr().expect("addr");
        let records: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let table = records.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
                if let Some(reply) = answer(&buf[..len], &table) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        DnsDouble { addr, records, _task: task }
    }

    /// Serves `text` as the TXT record of `name` (e.g. `_atproto.alice.example.com`).
    pub fn set_txt(&self, name: &str, text: &str) {
        self.records.lock().expect("records").insert(name.to_lowercase(), text.to_owned());
    }
}

fn answer(query: &[u8], table: &Mutex<HashMap<String, String>>) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // Read the question's name, then its type and class.
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = *query.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).to_lowercase());
        i += len;
    }
    let question_end = i + 4;
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let name = labels.join(".");
    let text = if qtype == 16 { table.lock().ok()?.get(&name).cloned() } else { None };
    let mut reply = Vec::with_capacity(128);
    reply.extend_from_slice(&query[..2]); // id
    let rcode: u8 = if text.is_some() { 0 } else { 3 }; // NXDOMAIN when unknown
    reply.extend_from_slice(&[0x81, 0x80 | rcode]);
    reply.extend_from_slice(&[0, 1, 0, u8::from(text.is_some()), 0, 0, 0, 0]);
    reply.extend_from_slice(query.get(12..question_end)?);
    if let Some(text) = text {
        let bytes = text.as_bytes();
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
        reply.extend_from_slice(&((bytes.len() + 1) as u16).to_be_bytes());
        reply.push(bytes.len() as u8);
        reply.extend_from_slice(bytes);
    }
    Some(reply)
}
