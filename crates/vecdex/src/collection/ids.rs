//! Item ids: the caller's own identifiers (strings such as UUIDs or paths, or unsigned
//! integers), each mapped to one row of a collection.

use std::fmt;

use crate::error::{Error, Result};

/// Bytes of a string id, at most (a path or a URL fits; a document does not belong in an id).
pub const MAX_ID_BYTES: usize = 4096;

/// One item's id. `Int(5)` and `Str("5")` are different ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemId {
    Int(u64),
    Str(Box<str>),
}

impl ItemId {
    /// A string id, checked: not empty, at most [`MAX_ID_BYTES`] bytes.
    pub fn string(id: String) -> Result<Self> {
        if id.is_empty() {
            return Err(Error::invalid("an id must not be an empty string"));
        }
        if id.len() > MAX_ID_BYTES {
            return Err(Error::invalid(format!(
                "an id is at most {MAX_ID_BYTES} bytes, got {}",
                id.len()
            )));
        }
        Ok(ItemId::Str(id.into_boxed_str()))
    }

    /// Bytes this id holds on the heap, beside its inline size.
    pub fn heap_bytes(&self) -> usize {
        match self {
            ItemId::Int(_) => 0,
            ItemId::Str(s) => s.len(),
        }
    }

    /// Appends the id's file encoding: tag 1 + u64, or tag 2 + u32 length + UTF-8 bytes.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ItemId::Int(n) => {
                out.push(1);
                out.extend_from_slice(&n.to_le_bytes());
            }
            ItemId::Str(s) => {
                out.push(2);
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemId::Int(n) => write!(f, "{n}"),
            ItemId::Str(s) => write!(f, "{s:?}"),
        }
    }
}
