//! The atproto protocol core: everything a relay or AppView recomputes when it receives our data.

pub mod cids;
pub mod crypto;
pub mod data;
pub mod interop;
pub mod lexicon;
pub mod syntax;
pub mod blockstore;
pub mod mst;
pub mod commit;
pub mod car;
pub mod repo;
