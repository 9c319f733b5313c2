//! How a generated method describes itself to the runtime, and how bodies are read and written.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::stream::BoxStream;
use poem::http::{HeaderMap, HeaderValue, StatusCode};
use poem::{Body, Request, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use aurora_atproto::lexicon::{Catalog, Def, Validator};

use crate::auth::{Auth, Credential};
use crate::endpoint::BodyLimits;
use crate::{RequestContext, XrpcError, XrpcResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodKind {
    Query,
    Procedure,
    Subscription,
}

/// One XRPC method: its NSID, kind, auth, and how its parameters and bodies are carried.
pub trait Method: Send + Sync + 'static {
    const NSID: &'static str;
    const KIND: MethodKind;
    const AUTH: Auth;
    /// What the handler receives once [`Self::AUTH`] is satisfied.
    type Credential: Credential;
    const INPUT_ENCODING: Option<&'static str>;
    const OUTPUT_ENCODING: Option<&'static str>;
    type Params: DeserializeOwned + crate::query::FromQuery + Send + 'static;
    type Input: InputBody;
    type Output: OutputBody;
}

/// Calls the service method behind an endpoint; generated for every served method.
pub trait Handler<S: ?Sized>: Method {
    fn call(
        service: &S,
        ctx: RequestContext,
        auth: Self::Credential,
        params: Self::Params,
        input: <Self::Input as InputBody>::Value,
    ) -> impl Future<Output = XrpcResult<<Self::Output as OutputBody>::Value>> + Send;
}

/// Reads a request body into the value a service method takes.
pub trait InputBody: Send + 'static {
    type Value: Send + 'static;
    fn read(
        request: &Request,
        body: Body,
        catalog: &'static Catalog,
        nsid: &'static str,
    ) -> impl Future<Output = XrpcResult<Self::Value>> + Send;

    /// A top-level field of the input, for rate limits keyed or weighed by it.
    fn field(_value: &Self::Value, _name: &str) -> Option<serde_json::Value> {
        None
    }
}

/// Writes a service method's result as a response.
pub trait OutputBody: Send + 'static {
    type Value: Send + 'static;
    fn write(value: Self::Value) -> XrpcResult<Response>;

    /// A subscription's frames, to be sent over a websocket instead of written as a response.
    fn into_frames(value: Self::Value) -> Result<FrameStream, Self::Value> {
        Err(value)
    }
}

/// For methods without parameters: accepts (and ignores) any query string.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct NoParams {}

/// No body: procedures without input, methods without output.
pub struct NoBody;

impl InputBody for NoBody {
    type Value = ();
    async fn read(_: &Request, _: Body, _: &'static Catalog, _: &'static str) -> XrpcResult<()> {
        Ok(())
    }
}

impl OutputBody for NoBody {
    type Value = ();
    fn write(_: ()) -> XrpcResult<Response> {
        Ok(Response::builder().status(StatusCode::OK).finish())
    }
}

/// A JSON body, validated against the lexicon before it is deserialised.
pub struct JsonBody<T>(std::marker::PhantomData<fn() -> T>);

impl<T: DeserializeOwned + Serialize + Send + 'static> InputBody for JsonBody<T> {
    type Value = T;

    fn field(value: &T, name: &str) -> Option<serde_json::Value> {
        match serde_json::to_value(value) {
            Ok(serde_json::Value::Object(mut map)) => map.remove(name),
            _ => None,
        }
    }

    async fn read(request: &Request, body: Body, catalog: &'static Catalog, nsid: &'static str) -> XrpcResult<T> {
        let Some(content_type) = request.content_type() else {
            return Err(XrpcError::invalid_request("Request encoding (Content-Type) required but not provided"));
        };
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(XrpcError::invalid_request(format!("Wrong request encoding (Content-Type): {essence}")));
        }
        let limit = request.data::<BodyLimits>().copied().unwrap_or_default().json_for(nsid);
        let bytes = body.into_bytes_limit(limit).await.map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => {
                XrpcError::payload_too_large(format!("request body is larger than {limit} bytes"))
            }
            other => XrpcError::invalid_request(format!("could not read the request body: {other}")),
        })?;
        let mut value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| XrpcError::invalid_request(format!("request body is not valid JSON: {e}")))?;
        whole_numbers_as_integers(&mut value);
        let schema = match catalog.main(nsid) {
            Some(Def::Procedure(p)) => p.input.as_ref().and_then(|b| b.schema.as_ref()),
            _ => None,
        };
        if let Some(schema) = schema {
            Validator::new(catalog)
                .field(schema, &value, nsid, "Input")
                .map_err(|e| XrpcError::invalid_request(e.to_string()))?;
        }
        serde_json::from_value(value).map_err(|e| XrpcError::invalid_request(format!("Input: {e}")))
    }
}

/// JSON has one kind of number, and a client (a JavaScript one, say) may write the integer 1 as
/// `1.0`; the reference reads it as the integer it is, so whole numbers in the 64-bit range
/// become integers here before the lexicon is checked. Fractions stay what they are.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            // i64::MAX as f64 rounds up to 2^63, which does not fit: the bound is exclusive.
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64) {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

impl<T: Serialize + Send + 'static> OutputBody for JsonBody<T> {
    type Value = T;
    fn write(value: T) -> XrpcResult<Response> {
        let size = answer_size::<T>();
        let mut json = Vec::with_capacity(size.load(Ordering::Relaxed).clamp(1024, MAX_SIZE_HINT));
        crate::json_writer::write(&mut json, &value).map_err(XrpcError::internal)?;
        size.store(json.len() + json.len() / 8, Ordering::Relaxed);
        Ok(Response::builder().content_type("application/json; charset=utf-8").body(json))
    }
}

/// The most a JSON answer's buffer starts with, whatever the last answer of its kind needed.
const MAX_SIZE_HINT: usize = 1 << 20;

/// The size the last JSON answer of type `T` needed, plus an eighth: its next answer's buffer
/// starts there. A fixed start either wasted memory on small answers or, for a listRecords page
/// of some 25 KiB, grew three times from 4 KiB, each time copying what was written (a twentieth
/// of the page's instructions). Types share a slot when their ids collide, which only makes a
/// hint less apt.
fn answer_size<T: 'static>() -> &'static AtomicUsize {
    static SIZES: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];
    let mut hasher = std::hash::DefaultHasher::new();
    std::any::TypeId::of::<T>().hash(&mut hasher);
    &SIZES[hasher.finish() as usize % SIZES.len()]
}

/// A body of bytes with its own MIME type (blobs, CAR files), streamed rather than buffered.
pub struct RawBody {
    pub content_type: String,
    pub content_length: Option<u64>,
    /// Extra response headers (ignored on input).
    pub headers: HeaderMap,
    /// The response status, 200 unless set (e.g. 206 for a range).
    pub status: Option<StatusCode>,
    pub body: Body,
}

impl RawBody {
    pub fn new(content_type: impl Into<String>, body: impl Into<Body>) -> Self {
        Self {
            content_type: content_type.into(),
            content_length: None,
            headers: HeaderMap::new(),
            status: None,
            body: body.into(),
        }
    }
}

impl InputBody for RawBody {
    type Value = RawBody;
    async fn read(request: &Request, body: Body, _: &'static Catalog, _: &'static str) -> XrpcResult<RawBody> {
        let Some(content_type) = request.content_type() else {
            return Err(XrpcError::invalid_request("Request encoding (Content-Type) required but not provided"));
        };
        let content_length = request
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(RawBody {
            content_type: content_type.to_owned(),
            content_length,
            headers: HeaderMap::new(),
            status: None,
            body,
        })
    }
}

impl OutputBody for RawBody {
    type Value = RawBody;
    fn write(value: RawBody) -> XrpcResult<Response> {
        let mut response = Response::builder().status(value.status.unwrap_or(StatusCode::OK)).body(value.body);
        let headers = response.headers_mut();
        headers.extend(value.headers);
        let content_type = HeaderValue::from_str(&value.content_type).map_err(XrpcError::internal)?;
        headers.insert(poem::http::header::CONTENT_TYPE, content_type);
        if let Some(length) = value.content_length {
            headers.insert(poem::http::header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        Ok(response)
    }
}

/// One websocket message of an event stream: a DAG-CBOR header and body, already encoded.
pub type Frame = Vec<u8>;

/// A subscription's stream of frames; the endpoint upgrades the connection and sends them.
pub struct FrameStream(pub BoxStream<'static, Frame>);

impl OutputBody for FrameStream {
    type Value = FrameStream;
    fn write(_: FrameStream) -> XrpcResult<Response> {
        Err(XrpcError::invalid_request("this method is a subscription: connect with a websocket"))
    }

    fn into_frames(value: FrameStream) -> Result<FrameStream, FrameStream> {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{answer_size, whole_numbers_as_integers, JsonBody, OutputBody, MAX_SIZE_HINT};

    #[test]
    fn whole_numbers_become_integers_and_fractions_do_not() {
        let mut value = json!({ "a": 1.0, "b": [2.0, 2.5, -0.0], "c": { "d": 1e3 }, "e": 1e300, "f": "1.0" });
        whole_numbers_as_integers(&mut value);
        assert_eq!(value, json!({ "a": 1, "b": [2, 2.5, 0], "c": { "d": 1000 }, "e": 1e300, "f": "1.0" }));
        assert!(value["a"].is_i64() && value["b"][1].is_f64() && value["e"].is_f64());
    }

    #[test]
    fn an_answer_starts_from_the_size_the_last_of_its_kind_needed() {
        struct Page(Vec<String>);
        impl serde::Serialize for Page {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }
        let page = Page(vec!["x".repeat(1000); 30]);
        assert!(JsonBody::<Page>::write(page).is_ok());
        let hint = answer_size::<Page>().load(std::sync::atomic::Ordering::Relaxed);
        assert!((30 * 1002..MAX_SIZE_HINT).contains(&hint), "{hint}");
    }
}
