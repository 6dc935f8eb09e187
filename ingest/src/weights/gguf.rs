//! A llama.cpp GGUF file as a [`WeightSource`]: tensors under their Hugging Face names, dequantized block by
//! block as they are read.
//!
//! Names: tensors of Llama-named architectures get their Hugging Face names (`blk.0.attn_q.weight` →
//! `model.layers.0.self_attn.q_proj.weight`); every other tensor keeps its llama.cpp name (the roles module
//! recognises `blk.N.` as a layer index). Values: [`GgufFile::read_f32`] decodes only the blocks that cover the
//! requested range and undoes the converter's rotary Q/K row permutation, so a streamed tensor costs one chunk
//! of memory, and [`WeightSource::release`] drops the mapped pages behind the reader.
//!
//! Every float or quantized type the reader decodes is a weight; the few ggml types without a dequantizer (the
//! IQ1/IQ2/IQ3 grids, TQ1_0), integer tensors and the rope buffers the converter computes from the config
//! (`rope_freqs`, `rope_factors_*`) are listed but never read.

use crate::error::{Error, Result};
use crate::weights::{TensorMeta, WeightSource};
use provsearch_formats::gguf::{GgmlType, GgufFile};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// A memory-mapped GGUF checkpoint.
pub struct GgufSource {
    file: GgufFile,
    tensors: Vec<TensorMeta>,
    /// For each entry of `tensors`: its index in the file's tensor list.
    locations: Vec<usize>,
}

impl std::fmt::Debug for GgufSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufSource")
            .field("path", &self.file.path())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// Whether values of a ggml type are real-valued weights this build can decode.
pub fn is_weight_type(ty: GgmlType) -> bool {
    use GgmlType::*;
    ty.can_dequantize() && !matches!(ty, I8 | I16 | I32 | I64)
}

/// Whether a tensor is a buffer the converter computes from the config rather than a trained weight:
/// `rope_freqs` (Llama 3 rope scaling), `rope_factors_long`/`_short` (Phi-3 LongRoPE). Every model with the
/// same config has the same values, so they would be false evidence of lineage.
pub fn is_config_buffer(llama_cpp_name: &str) -> bool {
    llama_cpp_name
        .split('.')
        .any(|part| part.starts_with("rope_freqs") || part.starts_with("rope_factors"))
}

impl GgufSource {
    /// Open, map and validate a GGUF file.
    pub fn open(path: &Path) -> Result<GgufSource> {
        let file = GgufFile::open(path)?;
        let mut located: Vec<(TensorMeta, usize)> = Vec::with_capacity(file.tensors().len());
        let mut names = HashSet::with_capacity(file.tensors().len());
        for (index, t) in file.tensors().iter().enumerate() {
            // Two llama.cpp names never map to one HF name; should a file manage it, the second keeps its own.
            let name = match &t.hf_name {
                Some(hf) if !names.contains(hf.as_str()) => hf.clone(),
                _ => t.name.clone(),
            };
            if !names.insert(name.clone()) {
                return Err(Error::DuplicateTensor {
                    path: path.to_path_buf(),
                    tensor: name,
                });
            }
            located.push((
                TensorMeta {
                    name,
                    shape: t.shape.clone(),
                    dtype: t.ggml_type.name().to_string(),
                    is_weight: is_weight_type(t.ggml_type) && !is_config_buffer(&t.name),
                    file: path.to_path_buf(),
                },
                index,
            ));
        }
        located.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let (tensors, locations) = located.into_iter().unzip();
        Ok(GgufSource {
            file,
            tensors,
            locations,
        })
    }

    /// The underlying file (metadata, vocabulary, config).
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// The ggml type holding most elements of the 2-D weight tensors (the file's quantization as a whole,
    /// since llama.cpp keeps norms in F32 and often stores the embedding or output in a wider type).
    pub fn dominant_type(&self) -> Option<GgmlType> {
        let mut elements: BTreeMap<GgmlType, u64> = BTreeMap::new();
        for t in self.file.tensors().iter().filter(|t| t.dims.len() >= 2) {
            *elements.entry(t.ggml_type).or_default() += t.numel();
        }
        elements
            .into_iter()
            .max_by_key(|&(ty, n)| (n, std::cmp::Reverse(ty)))
            .map(|(ty, _)| ty)
    }
}

impl WeightSource for GgufSource {
    fn tensors(&self) -> &[TensorMeta] {
        &self.tensors
    }

    fn read_f32(&self, index: usize, start: u64, out: &mut [f32]) -> Result<()> {
        let tensor = self
            .locations
            .get(index)
            .and_then(|&i| self.file.tensors().get(i))
            .ok_or_else(|| {
                Error::no_weights(
                    self.file.path(),
                    format!("tensor index {index} out of range"),
                )
            })?;
        Ok(self.file.read_f32(tensor, start, out)?)
    }

    fn release(&self, index: usize, start: u64, count: u64) {
        if let Some(tensor) = self
            .locations
            .get(index)
            .and_then(|&i| self.file.tensors().get(i))
        {
            self.file.release(tensor, start, count);
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        vec![self.file.path().to_path_buf()]
    }

    /// The dominant ggml type of the matrices (`"Q4_1"`, `"Q4_K"`, ...); `None` when they are stored as floats.
    fn quantization(&self) -> Option<String> {
        use GgmlType::*;
        self.dominant_type()
            .filter(|ty| !matches!(ty, F32 | F16 | BF16 | F64))
            .map(|ty| ty.name().to_string())
    }

    /// A file that is one part of a `gguf-split` model holds only some of the tensors: say so.
    fn notes(&self) -> Vec<String> {
        let get = |k: &str| self.file.metadata(k).and_then(|v| v.as_u64());
        match (get("split.no"), get("split.count")) {
            (Some(no), Some(count)) if count > 1 => vec![format!(
                "GGUF split part {} of {count}: only this part's tensors were fingerprinted",
                no + 1
            )],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provsearch_formats::gguf::writer::{llama_permute, GgufWriter};

    /// A two-layer Llama file: Q4_1 attention, Q8_0 MLP (fewer elements), F32 norms, and an I32 tensor.
    fn write(dir: &Path) -> PathBuf {
        let (h, f, heads) = (64usize, 32usize, 4usize);
        let mut w = GgufWriter::new();
        w.add_string("general.architecture", "llama")
            .add_u32("llama.attention.head_count", heads as u32)
            .add_u32("llama.block_count", 1);
        let values = |n: usize, seed: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i as f32 * 0.37 + seed).sin()) * 0.05)
                .collect()
        };
        let q = values(h * h, 1.0);
        w.add_tensor(
            "blk.0.attn_q.weight",
            GgmlType::Q4_1,
            &[h as u64, h as u64],
            &llama_permute(&q, h, h, heads),
        )
        .unwrap();
        w.add_tensor(
            "blk.0.attn_v.weight",
            GgmlType::Q4_1,
            &[h as u64, h as u64],
            &values(h * h, 2.0),
        )
        .unwrap();
        w.add_tensor(
            "blk.0.ffn_up.weight",
            GgmlType::Q8_0,
            &[f as u64, h as u64],
            &values(f * h, 3.0),
        )
        .unwrap();
        w.add_tensor(
            "blk.0.attn_norm.weight",
            GgmlType::F32,
            &[h as u64],
            &vec![1.0; h],
        )
        .unwrap();
        w.add_raw_tensor("rope_cache", GgmlType::I32, &[4], vec![0; 16]);
        w.add_tensor("rope_freqs.weight", GgmlType::F32, &[8], &[1.0; 8])
            .unwrap();
        let path = dir.join("m.gguf");
        w.write(&path).unwrap();
        path
    }

    #[test]
    fn hf_names_types_and_values() {
        let tmp = tempfile::tempdir().unwrap();
        let src = GgufSource::open(&write(tmp.path())).unwrap();
        let names: Vec<&str> = src.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "model.layers.0.input_layernorm.weight",
                "model.layers.0.mlp.up_proj.weight",
                "model.layers.0.self_attn.q_proj.weight",
                "model.layers.0.self_attn.v_proj.weight",
                "rope_cache",
                "rope_freqs.weight",
            ]
        );
        let q = &src.tensors()[2];
        assert_eq!(
            (q.shape.as_slice(), q.dtype.as_str()),
            (&[64u64, 64][..], "Q4_1")
        );
        assert!(q.is_weight);
        assert!(
            !src.tensors()[4].is_weight,
            "integer tensors are not weights"
        );
        assert!(!src.tensors()[5].is_weight, "rope buffers are not weights");
        assert_eq!(src.quantization().as_deref(), Some("Q4_1"));

        // The permutation is undone: row 1 of the HF tensor is what was written as row 1 before permuting.
        let mut row = vec![0f32; 64];
        src.read_f32(2, 64, &mut row).unwrap();
        let want: Vec<f32> = (64..128)
            .map(|i| ((i as f32 * 0.37 + 1.0).sin()) * 0.05)
            .collect();
        let err = row
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err < 0.01, "max error {err}");
        // Releasing pages is harmless: the values read again are the same.
        src.release(2, 0, 64 * 64);
        let mut again = vec![0f32; 64];
        src.read_f32(2, 64, &mut again).unwrap();
        assert_eq!(row, again);
        assert!(src.read_f32(2, 64 * 64 - 1, &mut [0.0; 2]).is_err());
        assert!(src.read_f32(99, 0, &mut [0.0; 1]).is_err());
    }

    #[test]
    fn float_files_have_no_quantization() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = GgufWriter::new();
        w.add_string("general.architecture", "llama");
        w.add_tensor("blk.0.ffn_up.weight", GgmlType::F16, &[4, 32], &[0.5; 128])
            .unwrap();
        let path = tmp.path().join("f16.gguf");
        w.write(&path).unwrap();
        let src = GgufSource::open(&path).unwrap();
        assert_eq!(src.quantization(), None);
        assert_eq!(src.dominant_type(), Some(GgmlType::F16));
        assert!(src.notes().is_empty());

        // One part of a gguf-split model.
        w.add_u32("split.no", 0).add_u32("split.count", 3);
        w.write(&path).unwrap();
        let src = GgufSource::open(&path).unwrap();
        assert_eq!(
            src.notes(),
            ["GGUF split part 1 of 3: only this part's tensors were fingerprinted"]
        );
    }
}
