//! The XRPC runtime that generated code and handwritten services share: one error type, the
//! request context, the data-model value types, and the poem glue that parses parameters and
//! bodies against the lexicons, calls a service method and writes its answer.

pub mod auth;
pub mod codegen;
mod context;
mod endpoint;
mod error;
mod json_writer;
mod method;
pub mod query;
mod values;

pub use auth::{Auth, Authenticator};
pub use context::{ClientIp, RequestContext};
pub use endpoint::{client_ip, endpoint, validated_params, BodyLimits};
pub use error::{XrpcError, XrpcResult};
pub use method::{
    Frame, FrameStream, Handler, InputBody, JsonBody, Method, MethodKind, NoBody, NoParams, OutputBody, RawBody,
};
pub use values::{BlobRef, Bytes, CidLink, RenderedJson, TaggedObject, Unknown, UnknownObject};
