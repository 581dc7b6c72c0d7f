//! What a grown corpus reaches: for each input of a loader target (as given and re-signed),
//! whether it loads, which check refused it (errors grouped by message, numbers removed), and
//! which accepted files do not save back to the same bytes (accepted but not canonical).
//!
//!     cargo run --release --example corpus_stats -- load_hnsw corpus/load_hnsw
//!
//! With `CORPUS_STATS_DUMP=DIR`, every accepted-but-not-canonical input is written
//! there with what they save as (`N.in`, `N.out`).

use std::collections::BTreeMap;

use vecdex::{FlatIndex, HnswIndex};

fn shape(message: &str) -> String {
    let mut out = String::new();
    for c in message.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args
        .next()
        .expect("usage: corpus_stats <load_hnsw|load_flat> DIR");
    let dir = args.next().expect("a corpus folder");
    let load: fn(&[u8]) -> vecdex::Result<Vec<u8>> = match target.as_str() {
        "load_hnsw" => |d| HnswIndex::from_bytes(d).and_then(|i| i.to_bytes()),
        "load_flat" => |d| FlatIndex::from_bytes(d).and_then(|i| i.to_bytes()),
        other => panic!("unknown target {other}"),
    };
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let (mut inputs, mut loaded, mut not_canonical) = (0, 0, 0);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus folder")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let raw = std::fs::read(&path).expect("readable");
        let mut variants = vec![raw.clone()];
        if let Some(fixed) = vecdex_fuzz::reencode(&raw) {
            if fixed != raw {
                variants.push(fixed);
            }
        }
        for bytes in variants {
            inputs += 1;
            match load(&bytes) {
                Ok(saved) => {
                    loaded += 1;
                    if saved != bytes {
                        not_canonical += 1;
                        if not_canonical <= 5 {
                            println!("accepted, saves differently: {}", path.display());
                        }
                        // CORPUS_STATS_DUMP=DIR keeps these pairs (N.in accepted, N.out saved).
                        if let Some(out) = std::env::var_os("CORPUS_STATS_DUMP") {
                            let out = std::path::Path::new(&out);
                            std::fs::create_dir_all(out).expect("dump folder");
                            let name = |ext| out.join(format!("{not_canonical}.{ext}"));
                            std::fs::write(name("in"), &bytes).expect("dump");
                            std::fs::write(name("out"), &saved).expect("dump");
                        }
                    }
                }
                Err(e) => *errors.entry(shape(&e.to_string())).or_default() += 1,
            }
        }
    }
    println!("{inputs} inputs: {loaded} loaded ({not_canonical} not canonical)");
    let mut by_count: Vec<_> = errors.into_iter().collect();
    by_count.sort_by_key(|e| std::cmp::Reverse(e.1));
    println!("{} distinct refusals:", by_count.len());
    for (message, count) in by_count {
        println!("{count:7}  {message}");
    }
}
