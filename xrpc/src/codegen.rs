//! The one facade generated code imports from (`use crate::rt;` re-exports this module), so the
//! generated crate names no other dependency directly.

pub use serde;
pub use serde::{Deserialize, Deserializer, Serialize, Serializer};
pub use serde_json::Value;

pub use poem::Route;

pub use aurora_atproto::lexicon::{Catalog, ValidationError, Validator};
pub use aurora_atproto::syntax::{
    AtIdentifier, AtUri, CidString, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid, Uri,
};

pub use crate::auth::{self, AccessRule, Auth, Authenticator, Level, OAuthRule, OAUTH_NOT_SUPPORTED};
pub use crate::endpoint::endpoint;
pub use crate::method::{FrameStream, Handler, JsonBody, Method, MethodKind, NoBody, NoParams, RawBody};
pub use crate::query::{self, FromQuery};
pub use crate::values::{
    default_bool, default_int, from_tagged, nullable, serialize_tagged, unexpected_type, unknown_value, BlobRef, Bytes,
    CidLink, TaggedObject, Unknown, UnknownObject,
};
pub use crate::{RequestContext, XrpcError, XrpcResult};
pub use aurora_atproto::permission::{AccountAttr, IdentityAttr};

/// Object properties a lexicon does not define, kept so data round-trips.
pub type Extra = serde_json::Map<String, serde_json::Value>;
