//! Token streams from corpus files, random training windows, and the unigram
//! entropy that a trained model's loss is compared against.

use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

use crate::rng::Rng;
use crate::tok::encode_text;

/// Fraction of each file (its tail) held out for evaluation.
pub const EVAL_FRACTION: f64 = 0.02;

/// Tokenised corpus: the head of every file for training, the tail for eval.
pub struct Corpus {
    pub train: Vec<u32>,
    pub eval: Vec<u32>,
}

/// Encode `files` (each followed by `eos`) and split each into train / eval.
pub fn load(tk: &Tokenizer, files: &[PathBuf], eos: u32) -> Result<Corpus> {
    let mut c = Corpus {
        train: Vec::new(),
        eval: Vec::new(),
    };
    for f in files {
        let bytes = std::fs::read(f).with_context(|| {
            format!(
                "reading corpus file {} (run ./fetch-corpus.sh)",
                f.display()
            )
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let ids = encode_text(tk, &text)?;
        let cut = ((ids.len() as f64) * (1.0 - EVAL_FRACTION)) as usize;
        c.train.extend_from_slice(&ids[..cut]);
        c.train.push(eos);
        c.eval.extend_from_slice(&ids[cut..]);
        c.eval.push(eos);
    }
    Ok(c)
}

/// Entropy (nats/token) of the unigram distribution of `ids`: the loss of the
/// best model that ignores context.
pub fn unigram_entropy(ids: &[u32], vocab: usize) -> f64 {
    let mut counts = vec![0u64; vocab];
    for &i in ids {
        counts[i as usize] += 1;
    }
    let n = ids.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// `batch` random windows of `seq` inputs and their next-token targets.
pub fn sample_batch(
    stream: &[u32],
    rng: &mut Rng,
    batch: usize,
    seq: usize,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let span = stream.len() - seq - 1;
    let mut x = Vec::with_capacity(batch * seq);
    let mut y = Vec::with_capacity(batch * seq);
    for _ in 0..batch {
        let s = rng.below(span);
        x.extend_from_slice(&stream[s..s + seq]);
        y.extend_from_slice(&stream[s + 1..s + seq + 1]);
    }
    Ok((
        Tensor::from_vec(x, (batch, seq), dev)?,
        Tensor::from_vec(y, (batch, seq), dev)?,
    ))
}
