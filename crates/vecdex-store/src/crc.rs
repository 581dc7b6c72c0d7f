//! CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), the checksum of iSCSI,
//! ext4 and Btrfs metadata; check value 0xE3069283 for "123456789" (RFC 3720, appendix B.4).
//!
//! A load checks every byte of a file that may hold gigabytes, so the checksum must run near
//! memory speed: on x86-64 with SSE 4.2 the `crc32` instruction does 8 bytes per step (chosen at
//! run time, never assumed at compile time); elsewhere a byte-wise table is the fallback.

const POLY: u32 = 0x82F6_3B78;

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    !crc32c_update(!0, bytes)
}

/// A CRC-32C computed piece by piece.
#[derive(Debug, Clone, Copy)]
pub struct Crc32c(u32);

impl Crc32c {
    pub fn new() -> Self {
        Crc32c(!0)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0 = crc32c_update(self.0, bytes);
    }

    pub fn finish(self) -> u32 {
        !self.0
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

/// Continues a CRC-32C whose internal (pre-inverted) state is `state` over `bytes`.
fn crc32c_update(state: u32, bytes: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU supports SSE 4.2, checked just above.
        return unsafe { update_sse42(state, bytes) };
    }
    update_table(state, bytes)
}

/// The reference: one table lookup per byte.
pub fn crc32c_portable(bytes: &[u8]) -> u32 {
    !update_table(!0, bytes)
}

fn update_table(state: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(state, |crc, &b| {
        TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

/// Below this many bytes one stream is as fast as three.
const THREE_WAY_MIN: usize = 3 * 1024;

/// The `crc32` instruction takes 3 cycles but starts one per cycle, so three independent
/// streams (thirds of the buffer) run three times as fast as one; their CRCs are then joined
/// with [`combine`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn update_sse42(state: u32, bytes: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let word = |w: &[u8]| {
        let mut le = [0u8; 8];
        le.copy_from_slice(w);
        u64::from_le_bytes(le)
    };
    let (mut crc, rest) = if bytes.len() >= THREE_WAY_MIN {
        let third = bytes.len() / 24 * 8;
        let (a, rest) = bytes.split_at(third);
        let (b, rest) = rest.split_at(third);
        let (c, rest) = rest.split_at(third);
        let (mut x, mut y, mut z) = (u64::from(state), u64::from(!0u32), u64::from(!0u32));
        for ((wa, wb), wc) in a
            .chunks_exact(8)
            .zip(b.chunks_exact(8))
            .zip(c.chunks_exact(8))
        {
            x = _mm_crc32_u64(x, word(wa));
            y = _mm_crc32_u64(y, word(wb));
            z = _mm_crc32_u64(z, word(wc));
        }
        // x is the running state after `a`; y and z are states of fresh CRCs of `b` and `c`.
        let joined = combine_states(x as u32, y as u32, third);
        (u64::from(combine_states(joined, z as u32, third)), rest)
    } else {
        (u64::from(state), bytes)
    };
    let mut words = rest.chunks_exact(8);
    for w in &mut words {
        crc = _mm_crc32_u64(crc, word(w));
    }
    let mut crc = crc as u32;
    for &b in words.remainder() {
        crc = _mm_crc32_u8(crc, b);
    }
    crc
}

/// The running state after `A ‖ B`, from the state after `A` and the state of a CRC of `B`
/// alone started from the usual `!0`: feeding `B` into a state is linear over GF(2), so
/// `state(A‖B) = state_B ⊕ shift(state_A ⊕ !0, |B|)`, where `shift` multiplies by x^(8·|B|)
/// modulo the polynomial (the identity behind zlib's crc32_combine).
fn combine_states(after_a: u32, fresh_b: u32, len_b: usize) -> u32 {
    fresh_b ^ multiply(after_a ^ !0, x_pow_8n(len_b))
}

/// CRC of `A ‖ B` from the CRCs of `A` and `B` and the length of `B`.
pub fn combine(crc_a: u32, crc_b: u32, len_b: usize) -> u32 {
    !combine_states(!crc_a, !crc_b, len_b)
}

/// `a · b` modulo the (reflected) polynomial.
fn multiply(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    let mut bit = 1u32 << 31;
    while bit != 0 {
        if a & bit != 0 {
            product ^= b;
        }
        bit >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    product
}

/// x^(8·n) modulo the polynomial, by squaring: x^(2^k) for each set bit of 8·n.
fn x_pow_8n(n: usize) -> u32 {
    // x^1 in reflected order is bit 30; squaring it k times gives x^(2^k).
    let mut power = 1u32 << 30;
    let mut result = 1u32 << 31; // x^0
    let mut bits = (n as u64) << 3;
    while bits != 0 {
        if bits & 1 != 0 {
            result = multiply(result, power);
        }
        power = multiply(power, power);
        bits >>= 1;
    }
    result
}
