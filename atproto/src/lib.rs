//! The atproto protocol core: everything a relay or AppView recomputes when it receives our data.

pub mod blockstore;
pub mod car;
pub mod cids;
pub mod commit;
pub mod crypto;
pub mod data;
pub mod interop;
pub mod lexicon;
pub mod mst;
pub mod permission;
pub mod repo;
pub mod syntax;
