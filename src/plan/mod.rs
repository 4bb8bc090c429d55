//! plan
pub mod document;
