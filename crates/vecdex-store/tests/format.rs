//! The file format against damage: every single-byte change, every truncation and random
//! mutations are errors (never a panic or a wrong success); saves are atomic.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the message we want

use rand::{rngs::StdRng, Rng, SeedableRng};
use vecdex_store::{
    crc32c, crc32c_combine, crc32c_portable, encode, parse, save_atomic, save_file, FileHeader,
    FileReader, IndexKind, StoreError,
};

fn sample() -> Vec<u8> {
    let header = FileHeader {
        kind: IndexKind::Hnsw,
        metric: 2,
        dimensions: 3,
        count: 5,
        config: b"m=16;ef=128".to_vec(),
    };
    let vectors: Vec<u8> = (0..60u8).collect();
    let keys: Vec<u8> = (0..40u8).map(|b| b.wrapping_mul(7)).collect();
    let odd = [9u8; 13];
    encode(&header, &[(1, &vectors), (7, &odd), (2, &keys)]).unwrap()
}

#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
}

#[test]
fn round_trip() {
    let bytes = sample();
    let file = parse(&bytes).unwrap();
    assert_eq!(file.version, 1);
    assert_eq!(file.header.kind, IndexKind::Hnsw);
    assert_eq!(
        (
            file.header.metric,
            file.header.dimensions,
            file.header.count
        ),
        (2, 3, 5)
    );
    assert_eq!(file.header.config, b"m=16;ef=128");
    assert_eq!(file.section(1).unwrap(), &(0..60u8).collect::<Vec<_>>()[..]);
    assert_eq!(file.section(7).unwrap(), &[9u8; 13]);
    assert_eq!(file.section(2).unwrap().len(), 40);
    assert!(file.section(3).is_none());
    let empty = encode(
        &FileHeader {
            kind: IndexKind::Flat,
            metric: 0,
            dimensions: 1,
            count: 0,
            config: Vec::new(),
        },
        &[],
    )
    .unwrap();
    assert!(parse(&empty).unwrap().sections.is_empty());
}

#[test]
fn every_single_byte_change_is_detected() {
    let bytes = sample();
    for at in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut damaged = bytes.clone();
            damaged[at] ^= flip;
            assert!(
                parse(&damaged).is_err(),
                "byte {at} ^ {flip:#x} went unnoticed"
            );
        }
    }
}

#[test]
fn every_truncation_and_extension_is_detected() {
    let bytes = sample();
    for len in 0..bytes.len() {
        assert!(parse(&bytes[..len]).is_err(), "truncated to {len}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(parse(&longer).is_err());
}

#[test]
fn random_mutations_never_pass_or_panic() {
    let bytes = sample();
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..100_000 {
        let mut damaged = bytes.clone();
        match rng.gen_range(0..3) {
            0 => {
                for _ in 0..rng.gen_range(1..5) {
                    let at = rng.gen_range(0..damaged.len());
                    damaged[at] = rng.gen();
                }
            }
            1 => damaged.truncate(rng.gen_range(0..bytes.len())),
            _ => {
                let at = rng.gen_range(0..damaged.len() - 8);
                let value: u64 = rng.gen();
                damaged[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
        }
        if damaged != bytes {
            assert!(parse(&damaged).is_err());
        }
    }
}

#[test]
fn newer_versions_and_unknown_kinds_are_unsupported() {
    let mut bytes = sample();
    bytes[8] = 2;
    assert!(matches!(parse(&bytes), Err(StoreError::Unsupported(_))));
    // An unknown kind with a valid checksum: re-sign the header.
    let mut bytes = sample();
    bytes[16] = 9;
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let crc = crc32c(&bytes[..header_len - 4]);
    bytes[header_len - 4..header_len].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(parse(&bytes), Err(StoreError::Unsupported(_))));
}

#[test]
fn saves_replace_the_file_atomically() {
    let dir = std::env::temp_dir().join(format!("vecdex-store-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.vecdex");
    save_atomic(&path, b"first").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    let bytes = sample();
    save_atomic(&path, &bytes).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    assert!(matches!(
        save_atomic(&dir.join("missing/index.vecdex"), b"x"),
        Err(StoreError::Io(_))
    ));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a failed save elsewhere changes nothing"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hardware_checksum_equals_the_table() {
    let mut rng = StdRng::seed_from_u64(5);
    let data: Vec<u8> = (0..5000).map(|_| rng.gen()).collect();
    for len in (0..64).chain([999, 3071, 3072, 3080, 4096, 4999]) {
        for start in 0..3 {
            let part = &data[start..start + len.min(data.len() - 3)];
            assert_eq!(crc32c(part), crc32c_portable(part), "len {len} at {start}");
        }
    }
    for split in [0, 1, 7, 100, 2500, 5000] {
        let (a, b) = data.split_at(split);
        assert_eq!(crc32c_combine(crc32c(a), crc32c(b), b.len()), crc32c(&data));
    }
}

#[test]
fn streamed_save_writes_the_encoded_image() {
    let header = FileHeader {
        kind: IndexKind::Flat,
        metric: 1,
        dimensions: 7,
        count: 2,
        config: vec![1, 2, 3],
    };
    let a: Vec<u8> = (0..29u8).collect();
    let b = [5u8; 3];
    let sections: [(u32, &[u8]); 2] = [(4, &a), (9, &b)];
    let dir = std::env::temp_dir().join(format!("vecdex-store-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.vdx");
    save_file(&path, &header, &sections).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        encode(&header, &sections).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn large_sections_read_in_parallel_chunks_are_checked() {
    let mut rng = StdRng::seed_from_u64(8);
    let big: Vec<u8> = (0..(3 << 20) + 12345).map(|_| rng.gen()).collect();
    let small = [1u8, 2, 3];
    let header = FileHeader {
        kind: IndexKind::Hnsw,
        metric: 2,
        dimensions: 4,
        count: 1,
        config: vec![7; 5],
    };
    let image = encode(&header, &[(3, &small), (5, &big)]).unwrap();
    let dir = std::env::temp_dir().join(format!("vecdex-store-chunks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.vdx");
    std::fs::write(&path, &image).unwrap();
    let mut reader = FileReader::open(&path).unwrap();
    let mut out = vec![0u8; big.len()];
    reader.read_into(5, &mut out).unwrap();
    assert_eq!(out, big);
    let mut fresh: Vec<u8> = Vec::with_capacity(big.len());
    // SAFETY: `fresh` has `big.len()` bytes of capacity, all written by a successful read.
    unsafe {
        reader
            .read_into_uninit(5, fresh.as_mut_ptr(), big.len())
            .unwrap();
        fresh.set_len(big.len());
    }
    assert_eq!(fresh, big);
    assert!(reader.read_into(5, &mut out[1..]).is_err());
    assert_eq!(reader.read_vec(3).unwrap().unwrap(), small);
    // A flip deep inside the third chunk of the big section.
    let mut bad = image.clone();
    let at = image.len() - 20_000;
    bad[at] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let mut reader = FileReader::open(&path).unwrap();
    assert!(matches!(
        reader.read_into(5, &mut out),
        Err(StoreError::Corrupt(_))
    ));
    // SAFETY: `out` has room for the section; the failed read leaves initialised bytes.
    let result = unsafe { reader.read_into_uninit(5, out.as_mut_ptr(), out.len()) };
    assert!(matches!(result, Err(StoreError::Corrupt(_))));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn saves_remove_temporaries_of_killed_saves() {
    let dir = std::env::temp_dir().join(format!("vecdex-store-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.vdx");
    // Nobody holds its lock: abandoned. (Locked ones are kept: see tests/temporaries.rs.)
    let stale = dir.join(".index.vdx.99999999.0.tmp");
    let other = dir.join(".other.vdx.99999999.0.tmp");
    for file in [&stale, &other] {
        std::fs::write(file, b"partial").unwrap();
    }
    save_atomic(&path, &sample()).unwrap();
    assert!(!stale.exists(), "a killed save's temporary file is removed");
    assert!(other.exists(), "another target's temporary file is kept");
    std::fs::remove_dir_all(&dir).unwrap();
}
