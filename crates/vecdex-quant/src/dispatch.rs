//! A codec chosen at run time (by an index's settings), and the dispatch to it: once per hot
//! loop with [`with_codec!`](crate::with_codec), once per call for everything else.

use crate::{
    Bf16Codec, BinaryCodec, Codec, ExtendedRabitqCodec, F16Codec, PlainCodec, PqCodec, RabitqCodec,
    Sq4Codec, Sq8Codec,
};

/// One of the codecs.
#[derive(Debug, Clone)]
pub enum AnyCodec {
    Plain(PlainCodec),
    F16(F16Codec),
    Bf16(Bf16Codec),
    Sq8(Sq8Codec),
    Sq4(Sq4Codec),
    Binary(BinaryCodec),
    Pq(PqCodec),
    Rabitq(RabitqCodec),
    ExtendedRabitq(ExtendedRabitqCodec),
}

/// Runs `$body` with `$codec` bound to the concrete codec inside `$any` (an `&AnyCodec`), so
/// hot loops are compiled once per codec instead of dispatching per score.
#[macro_export]
macro_rules! with_codec {
    ($any:expr, |$codec:ident| $body:expr) => {
        match $any {
            $crate::AnyCodec::Plain($codec) => $body,
            $crate::AnyCodec::F16($codec) => $body,
            $crate::AnyCodec::Bf16($codec) => $body,
            $crate::AnyCodec::Sq8($codec) => $body,
            $crate::AnyCodec::Sq4($codec) => $body,
            $crate::AnyCodec::Binary($codec) => $body,
            $crate::AnyCodec::Pq($codec) => $body,
            $crate::AnyCodec::Rabitq($codec) => $body,
            $crate::AnyCodec::ExtendedRabitq($codec) => $body,
        }
    };
}

impl AnyCodec {
    /// Bytes of one code.
    pub fn code_size(&self) -> usize {
        with_codec!(self, |c| c.code_size())
    }

    /// Writes the code of `vector` into `code` (see [`Codec::encode`]).
    pub fn encode(&self, vector: &[f32], code: &mut [u8]) {
        with_codec!(self, |c| c.encode(vector, code))
    }

    /// What the codec learnt, as its `model_bytes` (empty for codecs that learn nothing).
    pub fn model_bytes(&self) -> Vec<u8> {
        match self {
            AnyCodec::Sq8(c) => c.model_bytes(),
            AnyCodec::Sq4(c) => c.model_bytes(),
            AnyCodec::Binary(c) => c.model_bytes(),
            AnyCodec::Pq(c) => c.model_bytes(),
            AnyCodec::Rabitq(c) => c.model_bytes(),
            AnyCodec::ExtendedRabitq(c) => c.model_bytes(),
            AnyCodec::Plain(_) | AnyCodec::F16(_) | AnyCodec::Bf16(_) => Vec::new(),
        }
    }
}
