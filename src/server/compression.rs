//! Response compression by policy, in place of compressing every response the client would take
//! compressed. What compression buys depends on the body: JSON shrinks to a fraction, but a
//! repository CAR is mostly hashes and signatures and shrinks by little, blobs are images and
//! video already compressed, and a body of a few hundred bytes costs more to compress than it
//! saves on the wire. So only text of at least [`Policy::min_bytes`] is compressed, at the
//! codecs' fast levels, and CARs only when the operator asks for it.
//!
//! Compressed request bodies are decoded, as before.

use std::str::FromStr;

use async_compression::tokio::bufread as codec;
use async_compression::Level;
use http_body::Body as _;
use http_body_util::combinators::BoxBody;
use poem::http::header::{self, HeaderValue};
use poem::http::StatusCode;
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response};
use tokio::io::BufReader;

/// What is compressed, from the operator's settings.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Bodies of a known size below this are sent as they are.
    pub min_bytes: u64,
    /// Whether repository CARs (`getRepo`, `getBlocks`, `getRecord` of sync…) are compressed.
    pub cars: bool,
}

impl Policy {
    /// Whether a response of this type, status and headers is worth compressing at all.
    fn compressible(&self, response: &Response) -> bool {
        if response.status().is_informational()
            || response.status().is_redirection()
            || response.status() == StatusCode::NO_CONTENT
            || response.status() == StatusCode::PARTIAL_CONTENT
            || response.headers().contains_key(header::CONTENT_ENCODING)
            || response.headers().contains_key(header::CONTENT_RANGE)
        {
            return false;
        }
        let Some(kind) = response.content_type() else { return false };
        let essence = kind.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/vnd.ipld.car" => self.cars,
            "application/json" | "application/javascript" | "application/xml" | "image/svg+xml" => true,
            other => other.starts_with("text/") || other.ends_with("+json"),
        }
    }
}

/// A content coding both sides support, from least to most preferred when the client weighs
/// them equally. At the fast levels used here gzip gave the smallest JSON for the least CPU
/// but zstd's (docs/performance.md), and every official client accepts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Coding {
    Deflate,
    Brotli,
    Zstd,
    Gzip,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Deflate => "deflate",
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// The client's preferred coding from its `Accept-Encoding`, by weight, then by our order.
    fn negotiate(request: &Request) -> Option<Coding> {
        request
            .headers()
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|item| {
                let mut parts = item.split(';');
                let coding = parts.next()?.trim().parse::<Coding>().ok()?;
                let weight = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (weight > 0.0).then_some(((weight * 1000.0) as u32, coding))
            })
            .max()
            .map(|(_, coding)| coding)
    }

    /// Compresses `body` at the codec's fast level: these levels cost a small fraction of the
    /// default ones for a few percent larger output (see docs/performance.md).
    fn encode(self, body: Body) -> Body {
        let input = BufReader::new(body.into_async_read());
        match self {
            Coding::Deflate => Body::from_async_read(codec::DeflateEncoder::with_quality(input, Level::Fastest)),
            Coding::Gzip => Body::from_async_read(codec::GzipEncoder::with_quality(input, Level::Fastest)),
            // Quality 1 of 11: near gzip's fastest in speed, smaller output.
            Coding::Brotli => Body::from_async_read(codec::BrotliEncoder::with_quality(input, Level::Precise(1))),
            Coding::Zstd => Body::from_async_read(codec::ZstdEncoder::with_quality(input, Level::Fastest)),
        }
    }

    fn decode(self, body: Body) -> Body {
        let input = BufReader::new(body.into_async_read());
        match self {
            Coding::Deflate => Body::from_async_read(codec::DeflateDecoder::new(input)),
            Coding::Gzip => Body::from_async_read(codec::GzipDecoder::new(input)),
            Coding::Brotli => Body::from_async_read(codec::BrotliDecoder::new(input)),
            Coding::Zstd => Body::from_async_read(codec::ZstdDecoder::new(input)),
        }
    }
}

impl FromStr for Coding {
    type Err = ();

    fn from_str(name: &str) -> Result<Coding, ()> {
        let name = name.trim();
        [Coding::Deflate, Coding::Gzip, Coding::Brotli, Coding::Zstd]
            .into_iter()
            .find(|coding| coding.name().eq_ignore_ascii_case(name))
            .ok_or(())
    }
}

/// The middleware: [`Policy`] applied to every response.
pub struct Compression(pub Policy);

impl<E: Endpoint> Middleware<E> for Compression {
    type Output = CompressionEndpoint<E>;

    fn transform(&self, inner: E) -> CompressionEndpoint<E> {
        CompressionEndpoint { inner, policy: self.0 }
    }
}

pub struct CompressionEndpoint<E> {
    inner: E,
    policy: Policy,
}

impl<E: Endpoint> Endpoint for CompressionEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        let sent = request.headers().get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
        if let Some(coding) = sent.and_then(|name| name.parse::<Coding>().ok()) {
            let body = coding.decode(request.take_body());
            request.set_body(body);
            request.headers_mut().remove(header::CONTENT_ENCODING);
            request.headers_mut().remove(header::CONTENT_LENGTH);
        }
        let accepted = Coding::negotiate(&request);
        // Boxed so that this future holds a pointer rather than every layer inside it, which
        // each move of it would copy whole.
        let mut response = Box::pin(self.inner.call(request)).await?.into_response();
        if !self.policy.compressible(&response) {
            return Ok(response);
        }
        // The answer depends on Accept-Encoding whether or not this one is compressed.
        response.headers_mut().append(header::VARY, HeaderValue::from_static("accept-encoding"));
        let Some(coding) = accepted else { return Ok(response) };
        let body: BoxBody<bytes::Bytes, std::io::Error> = response.take_body().into();
        let known = body.size_hint().exact();
        if known.is_some_and(|size| size < self.policy.min_bytes) {
            response.set_body(Body::from(body));
            return Ok(response);
        }
        let body = match known {
            Some(size) if coding == Coding::Gzip && size <= WHOLE_GZIP_MAX => {
                let bytes = Body::from(body).into_bytes().await?;
                match gzip_whole(&bytes) {
                    Some(packed) => Body::from(packed),
                    None => {
                        response.set_body(bytes);
                        return Ok(response);
                    }
                }
            }
            _ => coding.encode(Body::from(body)),
        };
        response.set_body(body);
        response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
        response.headers_mut().remove(header::CONTENT_LENGTH);
        Ok(response)
    }
}

/// Bodies up to this size, whole in memory already (JSON answers are), are gzipped in one call
/// on a compressor kept by each thread ([`gzip_whole`]); larger ones, and those of unknown size,
/// stream through a compressor of their own.
const WHOLE_GZIP_MAX: u64 = 256 * 1024;

/// A gzip member's header: no name, time or flags; written by an unknown system (RFC 1952).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// `bytes` as a gzip member, deflated at the fast level on this thread's compressor. Setting a
/// compressor up zeroes some 300 KB of tables, a third of what gzipping a page of 100 records
/// cost (docs/performance.md); a reset one starts clean for less. `None` if the compressor
/// fails, when the body is sent as it is.
fn gzip_whole(bytes: &[u8]) -> Option<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        static DEFLATE: std::cell::RefCell<Compress> = std::cell::RefCell::new(Compress::new(Compression::fast(), false));
    }
    let mut packed = Vec::with_capacity(GZIP_HEADER.len() + bytes.len() / 3 + 64);
    packed.extend_from_slice(&GZIP_HEADER);
    DEFLATE.with_borrow_mut(|deflate| {
        deflate.reset();
        loop {
            let read = usize::try_from(deflate.total_in()).ok()?;
            packed.reserve(bytes.len().saturating_sub(read) / 2 + 64);
            match deflate.compress_vec(bytes.get(read..)?, &mut packed, FlushCompress::Finish).ok()? {
                Status::StreamEnd => return Some(()),
                Status::Ok | Status::BufError => continue,
            }
        }
    })?;
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    packed.extend_from_slice(&crc.sum().to_le_bytes());
    // The input's size modulo 2^32, as the format has it.
    packed.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    Some(packed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::{handler, EndpointExt};
    use tokio::io::AsyncReadExt;

    const POLICY: Policy = Policy { min_bytes: 1024, cars: false };

    /// Answers `/<type with _ for />?<size>` with that many bytes of that type.
    #[handler]
    fn answer(request: &Request) -> Response {
        let size: usize = request.uri().query().and_then(|q| q.parse().ok()).unwrap_or(0);
        let kind = request.uri().path().trim_start_matches('/').replace('_', "/");
        Response::builder().content_type(kind).body("a".repeat(size))
    }

    async fn call(policy: Policy, path: &str, accept: &str) -> (Option<String>, Vec<u8>) {
        let endpoint = answer.with(Compression(policy));
        let request = Request::builder().uri(path.parse().expect("a path")).header("accept-encoding", accept).finish();
        let response = endpoint.call(request).await.expect("an answer");
        let coding = response.headers().get("content-encoding").map(|v| v.to_str().expect("a coding").to_owned());
        (coding, response.into_body().into_vec().await.expect("a body"))
    }

    async fn decoded(coding: &str, body: Vec<u8>) -> String {
        let mut out = String::new();
        let coding: Coding = coding.parse().expect("a known coding");
        coding.decode(Body::from(body)).into_async_read().read_to_string(&mut out).await.expect("decodes");
        out
    }

    #[tokio::test]
    async fn json_above_the_threshold_is_compressed_in_the_preferred_coding() {
        let (coding, body) = call(POLICY, "/application_json?5000", "gzip, deflate, br, zstd").await;
        assert_eq!(coding.as_deref(), Some("gzip"));
        assert!(body.len() < 200);
        assert_eq!(decoded("gzip", body).await, "a".repeat(5000));
        let (coding, body) = call(POLICY, "/application_json?5000", "gzip;q=0.5, br;q=1").await;
        assert_eq!(coding.as_deref(), Some("br"));
        assert_eq!(decoded("br", body).await, "a".repeat(5000));
        for coding in ["zstd", "deflate"] {
            let (sent, body) = call(POLICY, "/application_json?5000", coding).await;
            assert_eq!(sent.as_deref(), Some(coding));
            assert_eq!(decoded(coding, body).await, "a".repeat(5000));
        }
    }

    #[tokio::test]
    async fn gzip_on_the_kept_compressor_and_streamed_decodes_to_the_body() {
        // One after another on this thread's compressor, which must start clean each time;
        // then a body above the whole-body bound and one of unknown size, which are streamed.
        let text = |seed: usize, n: usize| -> String {
            (0..n).map(|i| char::from(b'a' + ((i * 7 + seed * 13) % 26) as u8)).collect()
        };
        for (seed, n) in [(1, 5_000), (2, 90_000), (3, 1_500), (4, 300_000)] {
            let endpoint = poem::endpoint::make_sync(move |_| {
                Response::builder().content_type("application/json").body(text(seed, n))
            })
            .with(Compression(POLICY));
            let request = Request::builder().header("accept-encoding", "gzip").finish();
            let response = endpoint.call(request).await.expect("an answer");
            assert_eq!(response.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
            let body = response.into_body().into_vec().await.expect("a body");
            assert_eq!(decoded("gzip", body).await, text(seed, n), "{n} bytes");
        }
        let streamed = poem::endpoint::make_sync(|_| {
            let chunks =
                futures_util::stream::iter(["[1,", "2,", "3]"].map(|c| Ok::<_, std::io::Error>(c.repeat(500))));
            Response::builder().content_type("application/json").body(Body::from_bytes_stream(chunks))
        })
        .with(Compression(Policy { min_bytes: 0, cars: false }));
        let response =
            streamed.call(Request::builder().header("accept-encoding", "gzip").finish()).await.expect("an answer");
        let body = response.into_body().into_vec().await.expect("a body");
        assert_eq!(decoded("gzip", body).await, ["[1,", "2,", "3]"].map(|c| c.repeat(500)).concat());
    }

    #[tokio::test]
    async fn small_bodies_cars_and_media_are_sent_as_they_are() {
        for path in ["/application_json?100", "/application_vnd.ipld.car?50000", "/image_jpeg?50000"] {
            let (coding, body) = call(POLICY, path, "gzip, br").await;
            assert_eq!(coding, None, "{path}");
            assert!(body.iter().all(|b| *b == b'a'), "{path}");
        }
        let (coding, _) = call(POLICY, "/application_json?5000", "identity").await;
        assert_eq!(coding, None);
        let (coding, _) = call(POLICY, "/application_json?5000", "gzip;q=0").await;
        assert_eq!(coding, None);
    }

    #[tokio::test]
    async fn cars_are_compressed_when_the_operator_asks() {
        let policy = Policy { min_bytes: 1024, cars: true };
        let (coding, body) = call(policy, "/application_vnd.ipld.car?50000", "gzip").await;
        assert_eq!(coding.as_deref(), Some("gzip"));
        assert_eq!(decoded("gzip", body).await, "a".repeat(50000));
    }

    #[tokio::test]
    async fn compressed_requests_are_decoded() {
        #[handler]
        fn echo(body: String) -> String {
            body
        }
        let mut packed = Vec::new();
        codec::GzipEncoder::new(&b"hello, decoded"[..]).read_to_end(&mut packed).await.expect("encodes");
        let request =
            Request::builder().method(poem::http::Method::POST).header("content-encoding", "gzip").body(packed);
        let response = echo.with(Compression(POLICY)).call(request).await.expect("an answer");
        assert_eq!(response.into_body().into_string().await.expect("a body"), "hello, decoded");
    }
}
