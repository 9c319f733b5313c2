//! Identity: resolving handles to DIDs (DNS TXT, then HTTPS well-known) and DIDs to documents
//! (the PLC directory, or `did:web` over HTTPS), with a database cache, and reading what a PDS
//! needs out of a DID document.

pub mod doc;
pub mod guard;
mod resolver;

pub use doc::{atproto_handle, atproto_key, pds_endpoint, verification_key};
pub use guard::{fetch_guarded, Fetched, Guard, GuardError};
pub use resolver::{ResolveError, Resolver};
