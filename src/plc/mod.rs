//! did:plc: building and signing operations, deriving the DID of a genesis operation, and
//! talking to the PLC directory.

mod client;
mod operation;

pub use client::{PlcClient, PlcError};
pub use operation::{did_for_genesis, doc_for, Operation, Service, SignedOperation};
