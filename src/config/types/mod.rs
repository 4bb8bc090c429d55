//! A variable's type, as Terraform writes it: `string`, `list(number)`,
//! `object({ name = string, port = optional(number, 9101) })`, ...
//!
//! The `type` argument is a type expression, not a value: `list(string)` is
//! written as a function call and `object({...})` as an object, but nothing
//! is evaluated (except an optional attribute's default). So it is read
//! from the hcl-edit expression itself, and every mistake in it is
//! reported at its own place (types::parse); a value is converted to a type as
//! go-cty converts one (types::convert, types::unify).

mod convert;
mod parse;
mod unify;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

pub(crate) use convert::{convert, Step};
pub(crate) use parse::parse;
#[cfg(test)]
pub(crate) use parse::parse_str;

/// The type constraint of a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarType {
    /// `any`: the value as it is (and no `type`).
    Any,
    /// `string`
    String,
    /// `number`
    Number,
    /// `bool`
    Bool,
    /// `list(T)` (`list` alone is `list(any)`).
    List(Box<VarType>),
    /// `set(T)`: distinct elements, in order (strings and numbers sorted).
    Set(Box<VarType>),
    /// `map(T)` (`map` alone is `map(any)`).
    Map(Box<VarType>),
    /// `object({ NAME = T, ... })`, by attribute name.
    Object(BTreeMap<String, ObjectAttr>),
    /// `tuple([T, ...])`
    Tuple(Vec<VarType>),
}

/// One attribute of an `object({...})` type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAttr {
    /// Its type.
    pub ty: VarType,
    /// `optional(T)`: a value may leave it out (it is then null, or the
    /// default).
    pub optional: bool,
    /// `optional(T, DEFAULT)`: the value it takes when left out or null,
    /// already of type `T`.
    pub default: Option<serde_json::Value>,
}

impl VarType {
    /// Whether `any` appears anywhere in it: a collection of such elements
    /// must still find one type for all of them.
    pub fn has_any(&self) -> bool {
        match self {
            VarType::Any => true,
            VarType::String | VarType::Number | VarType::Bool => false,
            VarType::List(e) | VarType::Set(e) | VarType::Map(e) => e.has_any(),
            VarType::Object(attrs) => attrs.values().any(|a| a.ty.has_any()),
            VarType::Tuple(items) => items.iter().any(VarType::has_any),
        }
    }

    /// Whether it is `string`, `number` or `bool` (a `--var` for one is
    /// the string itself, converted; for any other type, `any` too, it is
    /// an HCL expression, as Terraform reads them).
    pub fn is_primitive(&self) -> bool {
        matches!(self, VarType::String | VarType::Number | VarType::Bool)
    }

    /// How messages name a value of this type: `list of string`, as go-cty
    /// does.
    pub fn friendly(&self) -> String {
        match self {
            VarType::Any => "any type".into(),
            VarType::String => "string".into(),
            VarType::Number => "number".into(),
            VarType::Bool => "bool".into(),
            VarType::List(e) => format!("list of {}", e.friendly()),
            VarType::Set(e) => format!("set of {}", e.friendly()),
            VarType::Map(e) => format!("map of {}", e.friendly()),
            VarType::Object(_) => "object".into(),
            VarType::Tuple(_) => "tuple".into(),
        }
    }
}

/// Terraform's text form of a type (its `TypeString`), with the
/// attributes marked optional: `list(object({name=string,port=optional(number)}))`.
impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarType::Any => f.write_str("any"),
            VarType::String => f.write_str("string"),
            VarType::Number => f.write_str("number"),
            VarType::Bool => f.write_str("bool"),
            VarType::List(e) => write!(f, "list({e})"),
            VarType::Set(e) => write!(f, "set({e})"),
            VarType::Map(e) => write!(f, "map({e})"),
            VarType::Object(attrs) => {
                f.write_str("object({")?;
                for (i, (name, attr)) in attrs.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    match attr.optional {
                        true => write!(f, "{sep}{name}=optional({})", attr.ty)?,
                        false => write!(f, "{sep}{name}={}", attr.ty)?,
                    }
                }
                f.write_str("})")
            }
            VarType::Tuple(items) => {
                f.write_str("tuple([")?;
                for (i, t) in items.iter().enumerate() {
                    write!(f, "{}{t}", if i == 0 { "" } else { "," })?;
                }
                f.write_str("])")
            }
        }
    }
}

/// A type is written in a document as its text form.
impl Serialize for VarType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
