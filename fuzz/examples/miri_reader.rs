//! `FileReader`'s unsafe read paths (pread into memory that is not initialised, raw-pointer
//! chunks written from the Rayon pool) small enough for Miri, which the format tests reach only
//! through a 3 MiB section (too slow under Miri: stopped after 45 minutes). Also runs natively.
//!
//!     RUSTFLAGS=-Ctarget-feature=+sse4.2 MIRIFLAGS=-Zmiri-disable-isolation \
//!         cargo +nightly miri run --example miri_reader [-- big]
//!
//! `big` adds a section of 1 MiB + 100 bytes: two parallel chunks (the chunk is 1 MiB).

#![allow(clippy::unwrap_used)]

use vecdex_store::{encode, FileHeader, FileReader, IndexKind, StoreError};

fn main() {
    let big = std::env::args().nth(1).as_deref() == Some("big");
    let header = FileHeader {
        kind: IndexKind::Flat,
        metric: 2,
        dimensions: 4,
        count: 3,
        config: vec![7; 5],
    };
    let small: Vec<u8> = (0..200u8).collect();
    let odd = [3u8; 13];
    let mut large = vec![0xA5u8; if big { (1 << 20) + 100 } else { 1000 }];
    let last = large.len() - 1;
    large[last] = 1;
    large[17] = 2;
    let image = encode(&header, &[(1, &small[..]), (2, &odd[..]), (3, &large[..])]).unwrap();
    let dir = std::env::temp_dir().join(format!("vecdex-miri-reader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.vdx");
    std::fs::write(&path, &image).unwrap();

    let mut reader = FileReader::open(&path).unwrap();
    assert_eq!(reader.layout().header, header);
    assert_eq!(reader.read_vec(1).unwrap().unwrap(), small);
    assert_eq!(reader.read_vec(2).unwrap().unwrap(), odd);
    assert!(reader.read_vec(9).unwrap().is_none());
    let mut out = vec![0u8; large.len()];
    reader.read_into(3, &mut out).unwrap();
    assert!(out == large);
    assert!(reader.read_into(3, &mut out[1..]).is_err(), "wrong length");
    // Into fresh, uninitialised memory: every byte written on success.
    let mut fresh: Vec<u8> = Vec::with_capacity(large.len());
    // SAFETY: `fresh` has `large.len()` bytes of capacity, all written by a successful read.
    unsafe {
        reader
            .read_into_uninit(3, fresh.as_mut_ptr(), large.len())
            .unwrap();
        fresh.set_len(large.len());
    }
    assert!(fresh == large);

    // A flip in the last byte of the large section: a checksum error on both paths.
    let mut bad = image.clone();
    let at = bad.len() - 1;
    bad[at] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let mut reader = FileReader::open(&path).unwrap();
    assert!(matches!(
        reader.read_into(3, &mut out),
        Err(StoreError::Corrupt(_))
    ));
    let mut fresh: Vec<u8> = Vec::with_capacity(large.len());
    // SAFETY: as above; on error the contents are unspecified and are not read.
    let result = unsafe { reader.read_into_uninit(3, fresh.as_mut_ptr(), large.len()) };
    assert!(matches!(result, Err(StoreError::Corrupt(_))));
    // A file cut short after its header was read: the read fails, no read past the end.
    std::fs::write(&path, &image).unwrap();
    let mut reader = FileReader::open(&path).unwrap();
    std::fs::write(&path, &image[..image.len() - 50]).unwrap();
    assert!(reader.read_into(3, &mut out).is_err());
    // Truncated and padded files are refused when opened.
    for cut in [0, 7, 39, 100, image.len() - 1] {
        std::fs::write(&path, &image[..cut]).unwrap();
        assert!(FileReader::open(&path).is_err(), "cut at {cut}");
    }
    let mut padded = image.clone();
    padded[image.len() - large.len() - 1] = 9; // padding before the large section
    std::fs::write(&path, &padded).unwrap();
    assert!(FileReader::open(&path).is_err(), "nonzero padding");
    std::fs::remove_dir_all(&dir).unwrap();
    println!(
        "FileReader paths ok ({} byte section{})",
        large.len(),
        if big { ", two chunks" } else { "" }
    );
}
