//! Quantized safetensors checkpoints (GPTQ, AWQ, bitsandbytes, FP8, MLX, compressed-tensors, MXFP4/NVFP4) seen
//! as their logical float weights.
//!
//! [`open`] wraps a [`SafetensorsSource`]: packed tensors are grouped per layer (`groups`: `q_proj.qweight`
//! with its `qzeros`, `scales` and `g_idx`; `weight` with `SCB`; `weight` with `weight.absmax` and its
//! quant_state; FP8 `weight` with `weight_scale_inv`; MLX uint32 `weight` with `scales` and `biases`; gpt-oss
//! `*_blocks` with `*_scales`; packed E2M1 with FP8 or E8M0 group scales). Each group becomes one logical
//! tensor named like the float weight it replaces (`...q_proj.weight`, `[out, in]`) whose reads dequantize on
//! the fly ([`decode`]), and the packed parts disappear from the tensor list. Tensors stored in full precision (norms, embeddings, lm_head) pass
//! through unchanged.
//!
//! A group whose layout or parameters are not supported (an unknown GPTQ `checkpoint_format`, AWQ GEMV
//! packing, act-order without `g_idx`, shapes that do not fit, ...) is not guessed at: its parts stay listed
//! but none of them is a weight — integer codes and their float scales alike — so signals see only the
//! full-precision tensors, and the fingerprint says so in `quantization` (`"gptq-4bit (unsupported: ...)"`)
//! and in a note. Packed integers are never read as weights.

pub mod config;
pub mod decode;
mod groups;

use crate::error::{Error, Result};
use crate::weights::{SafetensorsSource, TensorMeta, WeightSource};
use config::QuantConfig;
use decode::Decoder;
use groups::find_groups;
use provsearch_formats::Error as FormatError;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Quantization methods that name their packed tensors in ways this build does not read.
const UNREAD_METHODS: &[&str] = &[
    "hqq",
    "eetq",
    "aqlm",
    "quanto",
    "exl2",
    "higgs",
    "vptq",
    "spqr",
    "bitnet",
    "torchao",
    "fbgemm_fp8",
];

/// Open safetensors weights, dequantizing packed layouts when there are any. `root` holds config.json and
/// the tool-specific quantization files.
pub fn open(paths: &[PathBuf], root: &Path) -> Result<Box<dyn WeightSource>> {
    let inner = SafetensorsSource::open(paths)?;
    let config = QuantConfig::load(root)?;
    Ok(match QuantizedSource::detect(inner, config.as_ref()) {
        Ok(q) => Box::new(q),
        Err(plain) => Box::new(plain),
    })
}

/// What a listed tensor reads from.
#[derive(Debug)]
enum View {
    /// A stored tensor of the wrapped source, read as it is.
    Stored(usize),
    /// A logical weight dequantized from packed parts.
    Decoded(Decoder),
}

/// A safetensors checkpoint with packed quantized layers, presented as logical float weights.
pub struct QuantizedSource {
    inner: SafetensorsSource,
    tensors: Vec<TensorMeta>,
    views: Vec<View>,
    quantization: Option<String>,
    notes: Vec<String>,
}

impl std::fmt::Debug for QuantizedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantizedSource")
            .field("tensors", &self.tensors.len())
            .field("quantization", &self.quantization)
            .finish()
    }
}

impl QuantizedSource {
    /// Wrap `inner` if it holds packed layers (or declares a quantization); give it back untouched otherwise.
    pub fn detect(
        inner: SafetensorsSource,
        cfg: Option<&QuantConfig>,
    ) -> std::result::Result<QuantizedSource, SafetensorsSource> {
        let default = QuantConfig::default();
        let cfg = cfg.unwrap_or(&default);
        let mut groups = find_groups(&inner, cfg);
        let method = cfg.method.clone();
        if groups.is_empty() && method.is_none() {
            return Err(inner);
        }
        let stored: HashSet<&str> = inner.tensors().iter().map(|m| m.name.as_str()).collect();
        let mut consumed: HashSet<usize> = HashSet::new();
        for g in &mut groups {
            let collides = g.parts.iter().all(|&p| inner.tensors()[p].name != g.name)
                && stored.contains(g.name.as_str());
            if collides && g.decoder.is_ok() {
                g.decoder = Err(format!("`{}` is also stored in full precision", g.name));
            }
            consumed.extend(g.parts.iter().copied());
        }

        let mut listed: Vec<(TensorMeta, View)> = Vec::new();
        for (i, meta) in inner.tensors().iter().enumerate() {
            if !consumed.contains(&i) {
                listed.push((meta.clone(), View::Stored(i)));
            }
        }
        let mut decoded: BTreeMap<String, (usize, String)> = BTreeMap::new();
        let mut unsupported: BTreeMap<(String, String), usize> = BTreeMap::new();
        for g in groups {
            match g.decoder {
                Ok(d) => {
                    let label = d.label();
                    let meta = TensorMeta {
                        name: g.name,
                        shape: d.shape(),
                        dtype: label.clone(),
                        is_weight: true,
                        file: inner.tensors()[d.main_part().0].file.clone(),
                    };
                    let entry = decoded.entry(label).or_insert((0, d.detail()));
                    entry.0 += 1;
                    listed.push((meta, View::Decoded(d)));
                }
                Err(reason) => {
                    *unsupported.entry((g.family, reason)).or_default() += 1;
                    for p in g.parts {
                        let meta = TensorMeta {
                            is_weight: false,
                            ..inner.tensors()[p].clone()
                        };
                        listed.push((meta, View::Stored(p)));
                    }
                }
            }
        }
        listed.sort_by(|a, b| a.0.name.cmp(&b.0.name));

        let mut notes = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        for (label, (count, detail)) in &decoded {
            notes.push(format!("dequantized {count} {label} tensors ({detail})"));
            let partly = unsupported.keys().find(|(f, _)| f == label);
            labels.push(match partly {
                Some((_, reason)) => format!("{label} (partly unsupported: {reason})"),
                None => label.clone(),
            });
        }
        for ((fam, reason), count) in &unsupported {
            notes.push(format!(
                "{count} {fam} tensors not dequantized (unsupported: {reason}); only tensors stored in full \
                 precision were fingerprinted"
            ));
            if !decoded.contains_key(fam) && !labels.iter().any(|l| l.starts_with(fam.as_str())) {
                labels.push(format!("{fam} (unsupported: {reason})"));
            }
        }
        if labels.is_empty() {
            if let Some(m) = method.as_deref() {
                if UNREAD_METHODS.contains(&m) {
                    labels.push(format!("{m} (unsupported)"));
                    notes.push(format!(
                        "config declares {m} quantization, which this build does not dequantize; only tensors \
                         stored in full precision were fingerprinted"
                    ));
                } else {
                    notes.push(format!(
                        "config declares {m} quantization but no packed tensors were found; weights read as stored"
                    ));
                }
            }
        }
        let (tensors, views) = listed.into_iter().unzip();
        Ok(QuantizedSource {
            inner,
            tensors,
            views,
            quantization: (!labels.is_empty()).then(|| labels.join(", ")),
            notes,
        })
    }

    fn tensor_error(&self, index: usize, detail: String) -> Error {
        match self.tensors.get(index) {
            Some(m) => FormatError::Tensor {
                path: m.file.clone(),
                tensor: m.name.clone(),
                detail,
            }
            .into(),
            None => Error::no_weights(
                self.inner.files().first().cloned().unwrap_or_default(),
                detail,
            ),
        }
    }
}

impl WeightSource for QuantizedSource {
    fn tensors(&self) -> &[TensorMeta] {
        &self.tensors
    }

    fn read_f32(&self, index: usize, start: u64, out: &mut [f32]) -> Result<()> {
        match self.views.get(index) {
            Some(View::Stored(i)) => self.inner.read_f32(*i, start, out),
            Some(View::Decoded(d)) => {
                let numel = self.tensors[index].numel();
                let end = start.checked_add(out.len() as u64);
                if end.is_none_or(|e| e > numel) {
                    return Err(self.tensor_error(
                        index,
                        format!(
                            "elements {start}..{start}+{} out of range (the tensor has {numel})",
                            out.len()
                        ),
                    ));
                }
                d.decode(&self.inner, start, out)
                    .ok_or_else(|| self.tensor_error(index, "packed data out of range".to_string()))
            }
            None => Err(self.tensor_error(index, format!("tensor index {index} out of range"))),
        }
    }

    fn read_f32_streaming(&self, index: usize, start: u64, out: &mut [f32]) -> Result<()> {
        match self.views.get(index) {
            Some(View::Stored(i)) => self.inner.read_f32_streaming(*i, start, out),
            _ => self.read_f32(index, start, out),
        }
    }

    fn release(&self, index: usize, start: u64, count: u64) {
        match self.views.get(index) {
            Some(View::Stored(i)) => self.inner.release(*i, start, count),
            Some(View::Decoded(d)) => d.release(&self.inner, start, count),
            None => {}
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        self.inner.files()
    }

    fn quantization(&self) -> Option<String> {
        self.quantization.clone()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod micro_tests;
