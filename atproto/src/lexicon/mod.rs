//! Lexicon documents: their schema model, a catalog that resolves references between them, and
//! a validator that checks atproto JSON data against any definition.
//!
//! The code generator parses lexicons with these same types, and the server validates records,
//! parameters and request bodies with the same catalog, so one reading of a lexicon serves both.

mod catalog;
mod schema;
mod validate;

pub use catalog::{split_ref as catalog_split_ref, type_name, Catalog, CatalogError, DefRef};
pub use schema::*;
pub use validate::{boolean_param, grapheme_count, integer_param, ValidationError, Validator};
