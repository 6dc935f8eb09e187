//! Mistral's and Meta's native checkpoint layout (`consolidated.safetensors` with `params.json`), read in
//! Hugging Face's row order.
//!
//! The native layout names tensors `layers.N.attention.wq.weight`, `tok_embeddings.weight`, `output.weight` (the
//! role classifier knows these names), and stores the rotary dimensions of each Q and K head interleaved, as
//! Meta's and Mistral's reference code applies rotary embeddings. Hugging Face's conversion scripts
//! (`convert_llama_weights_to_hf.py`, `convert_mistral_weights_to_hf.py`) permute those rows into two halves
//! per head, the same permutation llama.cpp's converter undoes. [`NativeRotary`] reads `wq` and `wk` with HF's
//! row order, so that a native release and its HF conversion sample the same entries; every other tensor is
//! read as stored.

use crate::error::Result;
use crate::weights::{TensorMeta, WeightSource};
use provsearch_formats::config::ModelConfig;
use provsearch_formats::gguf::names::permuted_row;
use std::collections::HashMap;
use std::path::PathBuf;

/// A source whose native Q/K projections are read in HF row order.
pub struct NativeRotary {
    inner: Box<dyn WeightSource>,
    /// Tensor index → head dimension, for the tensors stored with interleaved rotary rows.
    head_dims: HashMap<usize, u64>,
    notes: Vec<String>,
}

/// `layers.N.attention.wq.weight` → the head count that applies (`n_heads` for wq, `n_kv_heads` for wk).
fn native_heads(name: &str, config: &ModelConfig) -> Option<u32> {
    let rest = name.strip_prefix("layers.")?;
    let (layer, projection) = rest.split_once('.')?;
    layer.parse::<u32>().ok()?;
    match projection {
        "attention.wq.weight" => Some(config.num_attention_heads),
        "attention.wk.weight" => Some(
            config
                .num_key_value_heads
                .unwrap_or(config.num_attention_heads),
        ),
        _ => None,
    }
}

impl NativeRotary {
    /// Wrap `inner` when it holds native Q/K projections whose head layout the config gives; give it back
    /// otherwise. The caller passes the config only for a native release (configured by `params.json`).
    pub fn wrap(
        inner: Box<dyn WeightSource>,
        config: Option<&ModelConfig>,
    ) -> Box<dyn WeightSource> {
        let Some(config) = config else {
            return inner;
        };
        let mut head_dims = HashMap::new();
        let mut unreadable = Vec::new();
        for (i, meta) in inner.tensors().iter().enumerate() {
            let Some(heads) = native_heads(&meta.name, config) else {
                continue;
            };
            let rows = meta.shape.first().copied().unwrap_or(0);
            let head_dim = rows / u64::from(heads.max(1));
            if meta.shape.len() == 2
                && heads > 0
                && head_dim % 2 == 0
                && head_dim * u64::from(heads) == rows
            {
                head_dims.insert(i, head_dim);
            } else {
                unreadable.push(meta.name.clone());
            }
        }
        if head_dims.is_empty() && unreadable.is_empty() {
            return inner;
        }
        let mut notes = Vec::new();
        if !head_dims.is_empty() {
            notes.push(format!(
                "native (Mistral/Meta) layout: {} Q/K projections read in Hugging Face's rotary row order",
                head_dims.len()
            ));
        }
        if !unreadable.is_empty() {
            notes.push(format!(
                "native layout: {} Q/K projections do not split into the config's heads (first: {}); read as stored",
                unreadable.len(),
                unreadable[0]
            ));
        }
        Box::new(NativeRotary {
            inner,
            head_dims,
            notes,
        })
    }

    /// Read HF rows of a permuted tensor through `read`, one stored row piece at a time.
    fn read_rows(
        &self,
        index: usize,
        head_dim: u64,
        start: u64,
        out: &mut [f32],
        read: impl Fn(u64, &mut [f32]) -> Result<()>,
    ) -> Result<()> {
        let cols = self.inner.tensors()[index].shape[1];
        let (mut pos, mut done) = (start, 0usize);
        while done < out.len() {
            let (row, col) = (pos / cols, pos % cols);
            let take = ((cols - col) as usize).min(out.len() - done);
            read(
                permuted_row(row, head_dim) * cols + col,
                &mut out[done..done + take],
            )?;
            done += take;
            pos += take as u64;
        }
        Ok(())
    }
}

impl WeightSource for NativeRotary {
    fn tensors(&self) -> &[TensorMeta] {
        self.inner.tensors()
    }

    fn read_f32(&self, index: usize, start: u64, out: &mut [f32]) -> Result<()> {
        match self.head_dims.get(&index) {
            Some(&hd) => self.read_rows(index, hd, start, out, |at, o| {
                self.inner.read_f32(index, at, o)
            }),
            None => self.inner.read_f32(index, start, out),
        }
    }

    fn read_f32_streaming(&self, index: usize, start: u64, out: &mut [f32]) -> Result<()> {
        match self.head_dims.get(&index) {
            Some(&hd) => self.read_rows(index, hd, start, out, |at, o| {
                self.inner.read_f32_streaming(index, at, o)
            }),
            None => self.inner.read_f32_streaming(index, start, out),
        }
    }

    fn release(&self, index: usize, start: u64, count: u64) {
        // A permuted range maps to scattered rows within its heads: only whole tensors are passed on.
        let whole = start == 0 && self.inner.tensors()[index].numel() <= count;
        if whole || !self.head_dims.contains_key(&index) {
            self.inner.release(index, start, count);
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        self.inner.files()
    }

    fn quantization(&self) -> Option<String> {
        self.inner.quantization()
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = self.inner.notes();
        notes.extend(self.notes.iter().cloned());
        notes
    }
}
