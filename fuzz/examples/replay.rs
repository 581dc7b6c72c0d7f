//! Runs saved inputs (crashes, corpus files) through a target's checks without libFuzzer,
//! for a plain panic message and backtrace:
//!
//!     RUST_BACKTRACE=1 cargo run --example replay -- load_hnsw artifacts/load_hnsw/crash-…

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args
        .next()
        .expect("usage: replay <load_hnsw|load_flat|parse_store> FILE…");
    let run: fn(&[u8]) = match target.as_str() {
        "load_hnsw" => |d| vecdex_fuzz::run_loader(d, vecdex_fuzz::check_hnsw),
        "load_flat" => |d| vecdex_fuzz::run_loader(d, vecdex_fuzz::check_flat),
        "parse_store" => vecdex_fuzz::run_parse,
        other => panic!("unknown target {other}"),
    };
    for path in args {
        let bytes = std::fs::read(&path).expect("readable input");
        let started = std::time::Instant::now();
        run(&bytes);
        println!(
            "{path}: {} bytes, ok in {:?}",
            bytes.len(),
            started.elapsed()
        );
    }
}
