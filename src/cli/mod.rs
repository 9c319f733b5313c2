//! Commands the binary runs besides serving: the operators' CLI (`admin`).

pub mod admin;
mod table;
