//! Quantized safetensors checkpoints (GPTQ, AWQ, bitsandbytes, FP8, MLX) seen as their logical float weights.
//!
//! [`open`] wraps a [`SafetensorsSource`]: packed tensors are grouped per layer (`q_proj.qweight` with its
//! `qzeros`, `scales` and `g_idx`; `weight` with `SCB`; `weight` with `weight.absmax` and its quant_state;
//! FP8 `weight` with `weight_scale_inv`; MLX uint32 `weight` with `scales` and `biases`), each group becomes one logical tensor named like the float weight it
//! replaces (`...q_proj.weight`, `[out, in]`) whose reads dequantize on the fly ([`decode`]), and the packed
//! parts disappear from the tensor list. Tensors stored in full precision (norms, embeddings, lm_head) pass
//! through unchanged.
//!
//! A group whose layout or parameters are not supported (an unknown GPTQ `checkpoint_format`, AWQ GEMV
//! packing, act-order without `g_idx`, shapes that do not fit, ...) is not guessed at: its parts stay listed
//! but none of them is a weight — integer codes and their float scales alike — so signals see only the
//! full-precision tensors, and the fingerprint says so in `quantization` (`"gptq-4bit (unsupported: ...)"`)
//! and in a note. Packed integers are never read as weights.

pub mod config;
pub mod decode;

use crate::error::{Error, Result};
use crate::weights::{SafetensorsSource, TensorMeta, WeightSource};
use config::QuantConfig;
use decode::{Awq, Bnb4, Bnb4Parts, Bnb8, Ct, CtParts, Decoder, Fp8, Gptq, Mlx, Part, Unsupported};
use provsearch_formats::dtype::Dtype;
use provsearch_formats::Error as FormatError;
use std::collections::{BTreeMap, HashMap, HashSet};
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

/// One packed layer found in the checkpoint.
struct Group {
    /// Logical weight name.
    name: String,
    /// Scheme name used when the group cannot be read (`"gptq-4bit"`, `"bnb-nf4"`, ...).
    family: String,
    /// Every stored tensor the group consumes.
    parts: Vec<usize>,
    decoder: std::result::Result<Decoder, Unsupported>,
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

fn family(method: &str, bits: Option<u32>) -> String {
    bits.map_or_else(|| method.to_string(), |b| format!("{method}-{b}bit"))
}

/// Find the packed groups of a checkpoint.
fn find_groups(src: &SafetensorsSource, cfg: &QuantConfig) -> Vec<Group> {
    let metas = src.tensors();
    let index: HashMap<&str, usize> = metas
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let find = |name: String| index.get(name.as_str()).copied();
    let method = cfg.method.as_deref();
    let mut groups = Vec::new();
    for (i, meta) in metas.iter().enumerate() {
        let name = meta.name.as_str();
        let dtype = src.dtype(i);
        if let Some(prefix) = name.strip_suffix(".qweight") {
            let (qzeros, scales, g_idx) = (
                find(format!("{prefix}.qzeros")),
                find(format!("{prefix}.scales")),
                find(format!("{prefix}.g_idx")),
            );
            let scale_cols = scales.and_then(|s| metas[s].shape.get(1).copied());
            let cols = meta.shape.get(1).copied();
            let awq = match method {
                Some("awq") => true,
                Some("gptq") => false,
                _ => scale_cols.is_some() && scale_cols != cols,
            };
            let fam = family(
                if awq { "awq" } else { "gptq" },
                cfg.bits.or(awq.then_some(4)),
            );
            let decoder = match (qzeros, scales) {
                (Some(z), Some(s)) if awq => {
                    Awq::new(src, [Part(i), Part(z), Part(s)], cfg).map(Decoder::Awq)
                }
                (Some(z), Some(s)) => {
                    Gptq::new(src, [Part(i), Part(z), Part(s)], g_idx.map(Part), cfg)
                        .map(Decoder::Gptq)
                }
                (None, Some(_)) => Err("no qzeros (symmetric layout without zero points)".into()),
                _ => Err("no scales".into()),
            };
            groups.push(Group {
                name: format!("{prefix}.weight"),
                family: decoder.as_ref().map_or(fam, Decoder::label),
                parts: [Some(i), qzeros, scales, g_idx]
                    .into_iter()
                    .flatten()
                    .collect(),
                decoder,
            });
        } else if let Some(prefix) = name.strip_suffix(".weight_packed") {
            // compressed-tensors pack-quantized: integer codes in int32 words (nvfp4 and other packings are
            // named as unsupported by the decoder).
            groups.push(compressed_tensors_group(src, &find, i, prefix, cfg.bits));
        } else if let (Some(Dtype::U32), Some(prefix)) = (dtype, name.strip_suffix(".weight")) {
            // MLX: `weight` uint32 codes beside `scales` and `biases` (embeddings and heads too).
            let Some(scales) = find(format!("{prefix}.scales")) else {
                continue;
            };
            let biases = find(format!("{prefix}.biases"));
            let params = cfg.mlx_params(prefix);
            let decoder = match (cfg.format.as_deref(), biases, params) {
                (Some(mode), _, _) if mode != "affine" => Err(format!("MLX `{mode}` mode")),
                (_, None, _) => Err("no biases (an MLX mode other than affine)".into()),
                (_, _, None) => {
                    Err("no bits/group_size declared in config.json `quantization`".into())
                }
                (_, Some(b), Some((bits, group))) => u64::try_from(group)
                    .map_err(|_| format!("group_size {group}"))
                    .and_then(|g| Mlx::new(src, [Part(i), Part(scales), Part(b)], bits, g))
                    .map(Decoder::Mlx),
            };
            groups.push(Group {
                name: name.to_string(),
                family: family("mlx", params.map(|p| p.0)),
                parts: [Some(i), Some(scales), biases]
                    .into_iter()
                    .flatten()
                    .collect(),
                decoder,
            });
        } else if dtype == Some(Dtype::I8) && name.ends_with(".weight") {
            let prefix = &name[..name.len() - ".weight".len()];
            let Some(scb) = find(format!("{prefix}.SCB")) else {
                // compressed-tensors int-quantized (W8A8, W8A16): int8 codes beside `weight_scale`.
                if find(format!("{prefix}.weight_scale")).is_some() {
                    groups.push(compressed_tensors_group(src, &find, i, prefix, Some(8)));
                }
                continue;
            };
            let format = find(format!("{prefix}.weight_format"));
            groups.push(Group {
                name: name.to_string(),
                family: "bnb-int8".into(),
                parts: [Some(i), Some(scb), format].into_iter().flatten().collect(),
                decoder: Bnb8::new(src, Part(i), Part(scb)).map(Decoder::Bnb8),
            });
        } else if dtype == Some(Dtype::U8) && name.ends_with(".weight") {
            let nf4 = find(format!("{name}.quant_state.bitsandbytes__nf4"));
            let fp4 = find(format!("{name}.quant_state.bitsandbytes__fp4"));
            let Some(state) = nf4.or(fp4) else {
                continue;
            };
            let (absmax, quant_map) = (
                find(format!("{name}.absmax")),
                find(format!("{name}.quant_map")),
            );
            let nested = (
                find(format!("{name}.nested_absmax")),
                find(format!("{name}.nested_quant_map")),
            );
            let decoder = match (absmax, quant_map, nested) {
                (Some(absmax), Some(quant_map), (na, nm)) => Bnb4::new(
                    src,
                    Bnb4Parts {
                        weight: Part(i),
                        absmax: Part(absmax),
                        quant_map: Part(quant_map),
                        state: Part(state),
                        nested: na.zip(nm).map(|(a, m)| (Part(a), Part(m))),
                    },
                )
                .map(Decoder::Bnb4),
                _ => Err("no absmax or quant_map".into()),
            };
            groups.push(Group {
                name: name.to_string(),
                family: if fp4.is_some() { "bnb-fp4" } else { "bnb-nf4" }.into(),
                parts: [Some(i), Some(state), absmax, quant_map, nested.0, nested.1]
                    .into_iter()
                    .flatten()
                    .collect(),
                decoder,
            });
        } else if matches!(dtype, Some(Dtype::F8E4M3 | Dtype::F8E5M2))
            && !name.ends_with("_scale")
            && !name.ends_with("_scale_inv")
        {
            // (FP8 scales belong to other layouts: NVFP4's `weight_scale`. Fused expert tensors without a
            // `.weight` suffix are weights.)
            let prefix = name.strip_suffix(".weight");
            let aux = |suffix: &str| prefix.and_then(|p| find(format!("{p}.{suffix}")));
            let (scale_inv, scale, input) = (
                aux("weight_scale_inv"),
                aux("weight_scale"),
                aux("input_scale"),
            );
            groups.push(Group {
                name: name.to_string(),
                family: if dtype == Some(Dtype::F8E5M2) {
                    "fp8-e5m2"
                } else {
                    "fp8-e4m3"
                }
                .into(),
                parts: [Some(i), scale_inv, scale, input]
                    .into_iter()
                    .flatten()
                    .collect(),
                decoder: Fp8::new(src, Part(i), scale_inv.map(Part), scale.map(Part), cfg)
                    .map(Decoder::Fp8),
            });
        }
    }
    groups
}

/// A compressed-tensors layer: its codes (tensor `i`: `weight_packed` int32 words, or an int8 `weight`) with the
/// `{prefix}.weight_*` parts beside them; `bits` is the declared code width.
fn compressed_tensors_group(
    src: &SafetensorsSource,
    find: &dyn Fn(String) -> Option<usize>,
    i: usize,
    prefix: &str,
    bits: Option<u32>,
) -> Group {
    let aux = |p: &str| find(format!("{prefix}.{p}"));
    let scale = aux("weight_scale");
    let decoder = match scale {
        Some(s) => Ct::new(
            src,
            CtParts {
                codes: Part(i),
                shape: aux("weight_shape").map(Part),
                scales: Part(s),
                zeros: aux("weight_zero_point").map(Part),
                g_idx: aux("weight_g_idx").map(Part),
            },
            bits,
        )
        .map(Decoder::Ct),
        None => Err("no weight_scale".into()),
    };
    let others = [
        "weight_shape",
        "weight_scale",
        "weight_zero_point",
        "weight_g_idx",
        "weight_global_scale",
        "input_scale",
        "input_global_scale",
    ]
    .map(aux);
    Group {
        name: format!("{prefix}.weight"),
        family: family("compressed-tensors", bits),
        parts: std::iter::once(i)
            .chain(others.into_iter().flatten())
            .collect(),
        decoder,
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
