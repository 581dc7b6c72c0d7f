//! Little-endian reading and writing of trained models (`model_bytes` / `from_model_bytes` of
//! each codec). A reader is built only after the caller has checked the exact length of the
//! bytes against the shapes it expects (with checked arithmetic), so nothing is allocated from
//! an untrusted size; every value read is still bounds-checked, and floats must be finite.

use crate::codec::QuantError;

/// Appends `values` as little-endian f32.
pub(crate) fn put_f32s(out: &mut Vec<u8>, values: &[f32]) {
    out.extend(values.iter().flat_map(|x| x.to_le_bytes()));
}

/// Appends `values` as little-endian f64.
pub(crate) fn put_f64s(out: &mut Vec<u8>, values: &[f64]) {
    out.extend(values.iter().flat_map(|x| x.to_le_bytes()));
}

/// The sum over `parts` of the product of each part's factors (e.g. `[rows, columns, 4]` for
/// an f32 matrix), or an error when it overflows.
pub(crate) fn model_len(parts: &[&[usize]], codec: &str) -> Result<usize, QuantError> {
    parts
        .iter()
        .try_fold(0usize, |total, factors| {
            factors
                .iter()
                .try_fold(1usize, |product, &f| product.checked_mul(f))?
                .checked_add(total)
        })
        .ok_or_else(|| QuantError::new(format!("{codec} model: its size overflows")))
}

/// Errors unless `bytes` is exactly `expected` bytes long.
pub(crate) fn check_len(
    bytes: &[u8],
    expected: usize,
    shape: &str,
    codec: &str,
) -> Result<(), QuantError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(QuantError::new(format!(
            "{codec} model: expected {expected} bytes for {shape}, got {}",
            bytes.len()
        )))
    }
}

/// Reads values in order from the front of the bytes.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    codec: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], codec: &'a str) -> Self {
        Reader { rest: bytes, codec }
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], QuantError> {
        let (head, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or_else(|| QuantError::new(format!("{} model: truncated in {what}", self.codec)))?;
        self.rest = rest;
        Ok(head)
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, QuantError> {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(word))
    }

    /// `n` finite f32 values; the error names `what` and the index of the first bad one.
    pub(crate) fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>, QuantError> {
        let len = n
            .checked_mul(4)
            .ok_or_else(|| QuantError::new(format!("{} model: {what} overflows", self.codec)))?;
        let values: Vec<f32> = self
            .take(len, what)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        self.check_finite(values.iter().map(|x| x.is_finite()), what)?;
        Ok(values)
    }

    /// `n` finite f64 values, as [`Reader::f32s`].
    pub(crate) fn f64s(&mut self, n: usize, what: &str) -> Result<Vec<f64>, QuantError> {
        let len = n
            .checked_mul(8)
            .ok_or_else(|| QuantError::new(format!("{} model: {what} overflows", self.codec)))?;
        let values: Vec<f64> = self
            .take(len, what)?
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect();
        self.check_finite(values.iter().map(|x| x.is_finite()), what)?;
        Ok(values)
    }

    fn check_finite(
        &self,
        mut finite: impl Iterator<Item = bool>,
        what: &str,
    ) -> Result<(), QuantError> {
        match finite.position(|ok| !ok) {
            Some(i) => Err(QuantError::new(format!(
                "{} model: value {i} of {what} is not finite",
                self.codec
            ))),
            None => Ok(()),
        }
    }

    /// Errors if bytes are left over (the caller's length check makes this unreachable, but a
    /// layout and its length formula must agree).
    pub(crate) fn finish(self) -> Result<(), QuantError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(QuantError::new(format!(
                "{} model: {} bytes left over",
                self.codec,
                self.rest.len()
            )))
        }
    }
}

/// Errors unless `check` holds for every value: "`codec` model: `what` `i` `requirement`" for
/// the first index `i` where it does not.
pub(crate) fn check_all<T: Copy>(
    values: &[T],
    check: impl Fn(T) -> bool,
    what: &str,
    requirement: &str,
    codec: &str,
) -> Result<(), QuantError> {
    match values.iter().position(|&x| !check(x)) {
        Some(i) => Err(QuantError::new(format!(
            "{codec} model: {what} {i} {requirement}"
        ))),
        None => Ok(()),
    }
}
