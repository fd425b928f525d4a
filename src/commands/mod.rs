//! The CLI's commands as library functions returning typed, `Serialize`
//! results; `main.rs` parses, calls one, prints.
//!
//! (This list holds the resolver's three commands; the lead merges it with
//! the list of the other commands.)

pub mod cat;
pub mod extract;
pub mod slice;
