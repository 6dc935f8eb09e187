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
//!
//! A model split by llama.cpp's `gguf-split` is opened from all its parts ([`GgufSource::open_parts`]) and
//! read as one model: metadata from the first part, tensors from all.

use crate::error::{Error, Result};
use crate::weights::{TensorMeta, WeightSource};
use provsearch_formats::gguf::split as split_keys;
use provsearch_formats::gguf::{GgmlType, GgufFile, GgufTensor};
use provsearch_formats::Error as FormatError;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// A memory-mapped GGUF checkpoint: one file, or the parts of a `gguf-split` model joined.
pub struct GgufSource {
    /// The parts in order; the first holds the metadata.
    parts: Vec<GgufFile>,
    tensors: Vec<TensorMeta>,
    /// For each entry of `tensors`: (part, index in that part's tensor list).
    locations: Vec<(usize, usize)>,
}

impl std::fmt::Debug for GgufSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufSource")
            .field("path", &self.file().path())
            .field("parts", &self.parts.len())
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
    /// Open, map and validate a GGUF file that is not split.
    pub fn open(path: &Path) -> Result<GgufSource> {
        GgufSource::open_parts(&[path.to_path_buf()])
    }

    /// Open a GGUF model: one file, or every part of a `gguf-split` model in order (see
    /// [`provsearch_formats::gguf::split`]). Parts are checked against each other: a missing part, a part
    /// whose `split.no`/`split.count` disagree with its position, or a tensor count other than the first
    /// part's `split.tensors.count` is an error naming the file. A single file that declares itself one part
    /// of several is an error too: half a model is not the model.
    pub fn open_parts(paths: &[PathBuf]) -> Result<GgufSource> {
        let Some(first_path) = paths.first() else {
            return Err(Error::no_weights(Path::new("."), "no .gguf file"));
        };
        let count = paths.len();
        if count > 1 {
            if let Some((i, missing)) = paths.iter().enumerate().find(|(_, p)| !p.is_file()) {
                return Err(Error::no_weights(
                    missing,
                    format!("part {} of {count} of a split GGUF model is missing", i + 1),
                ));
            }
        }
        let first = GgufFile::open(first_path)?;
        let split = first.header().split();
        match split {
            None if count > 1 => {
                return Err(FormatError::corrupt(
                    first_path,
                    format!(
                        "named as part 1 of {count} of a split GGUF model, but it has no `split.count` \
                         key above 1"
                    ),
                )
                .into())
            }
            Some(info) if count == 1 => {
                return Err(Error::no_weights(
                    first_path,
                    format!(
                        "part {} of {} of a model split by gguf-split, and its other parts were not found: \
                         they must sit in the same directory, named `<prefix>-00001-of-{:05}.gguf` and so on",
                        info.no + 1,
                        info.count,
                        info.count
                    ),
                ))
            }
            _ => {}
        }
        let mut parts = vec![first];
        for path in paths.iter().skip(1) {
            parts.push(GgufFile::open_part(path, parts[0].header())?);
        }
        // Every part says where it belongs.
        for (i, (part, path)) in parts.iter().zip(paths).enumerate() {
            let ok = part
                .header()
                .split()
                .is_some_and(|s| s.no == i as u64 && s.count == count as u64);
            if count > 1 && !ok {
                let get = |k: &str| {
                    part.metadata(k)
                        .and_then(|v| v.as_u64())
                        .map_or("missing".to_string(), |v| v.to_string())
                };
                return Err(FormatError::corrupt(
                    path,
                    format!(
                        "expected part {} of {count} of a split GGUF model (split.no {i}), but split.no is {} \
                         and split.count is {}",
                        i + 1,
                        get(split_keys::KEY_NO),
                        get(split_keys::KEY_COUNT)
                    ),
                )
                .into());
            }
        }
        let total: usize = parts.iter().map(|p| p.tensors().len()).sum();
        if let Some(expected) = split.and_then(|s| s.tensors) {
            if expected != total as u64 {
                return Err(FormatError::corrupt(
                    first_path,
                    format!(
                        "the {count} parts hold {total} tensors, but split.tensors.count is {expected}"
                    ),
                )
                .into());
            }
        }

        let mut located: Vec<(TensorMeta, (usize, usize))> = Vec::with_capacity(total);
        let mut names = HashSet::with_capacity(total);
        for (part_index, (part, path)) in parts.iter().zip(paths).enumerate() {
            for (index, t) in part.tensors().iter().enumerate() {
                // Two llama.cpp names never map to one HF name; should a file manage it, the second keeps its
                // own.
                let name = match &t.hf_name {
                    Some(hf) if !names.contains(hf.as_str()) => hf.clone(),
                    _ => t.name.clone(),
                };
                if !names.insert(name.clone()) {
                    return Err(Error::DuplicateTensor {
                        path: path.clone(),
                        tensor: name,
                    });
                }
                located.push((
                    TensorMeta {
                        name,
                        shape: t.shape.clone(),
                        dtype: t.ggml_type.name().to_string(),
                        is_weight: is_weight_type(t.ggml_type) && !is_config_buffer(&t.name),
                        file: path.clone(),
                    },
                    (part_index, index),
                ));
            }
        }
        located.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let (tensors, locations) = located.into_iter().unzip();
        Ok(GgufSource {
            parts,
            tensors,
            locations,
        })
    }

    /// The file holding the metadata, vocabulary and config (the first part of a split model).
    pub fn file(&self) -> &GgufFile {
        &self.parts[0]
    }

    /// Every part, in order (one for a file that is not split).
    pub fn parts(&self) -> &[GgufFile] {
        &self.parts
    }

    /// The part and header entry of tensor `index`.
    fn locate(&self, index: usize) -> Option<(&GgufFile, &GgufTensor)> {
        let &(part, i) = self.locations.get(index)?;
        let part = self.parts.get(part)?;
        Some((part, part.tensors().get(i)?))
    }

    /// The ggml type holding most elements of the 2-D weight tensors (the file's quantization as a whole,
    /// since llama.cpp keeps norms in F32 and often stores the embedding or output in a wider type).
    pub fn dominant_type(&self) -> Option<GgmlType> {
        let mut elements: BTreeMap<GgmlType, u64> = BTreeMap::new();
        for t in self
            .parts
            .iter()
            .flat_map(|p| p.tensors())
            .filter(|t| t.dims.len() >= 2)
        {
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

    /// Read with `pread` ([`GgufFile::pread_f32`]): the signals read a few scattered rows of every matrix and
    /// stream the embedding once, and through the memory map each read would set up page-table entries for the
    /// pages around it, which [`WeightSource::release`] then tears down again (a TLB shootdown on every core).
    fn read_f32(&self, index: usize, start: u64, out: &mut [f32]) -> Result<()> {
        let (part, tensor) = self.locate(index).ok_or_else(|| {
            Error::no_weights(
                self.file().path(),
                format!("tensor index {index} out of range"),
            )
        })?;
        Ok(part.pread_f32(tensor, start, out)?)
    }

    /// Reads do not go through the memory map (see [`GgufSource::read_f32`]), so no mapped page is left to
    /// release; on platforms without `pread` the mapped pages are released.
    fn release(&self, index: usize, start: u64, count: u64) {
        if cfg!(unix) {
            return;
        }
        if let Some((part, tensor)) = self.locate(index) {
            part.release(tensor, start, count);
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        self.parts.iter().map(|p| p.path().to_path_buf()).collect()
    }

    /// The dominant ggml type of the matrices (`"Q4_1"`, `"Q4_K"`, ...); `None` when they are stored as floats.
    fn quantization(&self) -> Option<String> {
        use GgmlType::*;
        self.dominant_type()
            .filter(|ty| !matches!(ty, F32 | F16 | BF16 | F64))
            .map(|ty| ty.name().to_string())
    }

    /// A model joined from gguf-split parts says so.
    fn notes(&self) -> Vec<String> {
        match self.parts.len() {
            1 => Vec::new(),
            n => vec![format!(
                "GGUF model split by gguf-split into {n} parts: read as one model"
            )],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provsearch_formats::gguf::writer::{llama_permute, GgufWriter};

    /// A two-layer Llama file: Q4_1 attention, Q8_0 MLP (fewer elements), F32 norms, and an I32 tensor.
    fn write(dir: &Path) -> PathBuf {
        let path = dir.join("m.gguf");
        fixture().write(&path).unwrap();
        path
    }

    fn fixture() -> GgufWriter {
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
        w
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

        // One part of a gguf-split model, named on its own: an error, since its other parts are missing.
        w.add_u32("split.no", 0).add_u32("split.count", 3);
        w.write(&path).unwrap();
        let err = GgufSource::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("f16.gguf") && err.contains("part 1 of 3"),
            "{err}"
        );
    }

    #[test]
    fn split_parts_join_into_one_model() {
        use provsearch_formats::gguf::split::part_file_name;
        let tmp = tempfile::tempdir().unwrap();
        let whole = GgufSource::open(&write(tmp.path())).unwrap();
        let paths: Vec<PathBuf> = (1..=3)
            .map(|n| tmp.path().join(part_file_name("m", n, 3)))
            .collect();
        let parts = fixture().split(2, false);
        assert_eq!(parts.len(), 3);
        for (part, path) in parts.iter().zip(&paths) {
            part.write(path).unwrap();
        }
        let joined = GgufSource::open_parts(&paths).unwrap();
        assert_eq!(joined.tensors().len(), whole.tensors().len());
        for (i, (a, b)) in joined.tensors().iter().zip(whole.tensors()).enumerate() {
            assert_eq!(
                (&a.name, &a.shape, &a.dtype, a.is_weight),
                (&b.name, &b.shape, &b.dtype, b.is_weight)
            );
            let mut x = vec![0f32; a.numel() as usize];
            let mut y = x.clone();
            joined.read_f32(i, 0, &mut x).unwrap();
            whole.read_f32(i, 0, &mut y).unwrap();
            assert_eq!(x, y, "{}", a.name);
        }
        assert_eq!(joined.quantization().as_deref(), Some("Q4_1"));
        assert_eq!(joined.files(), paths);
        assert_eq!(
            joined.notes(),
            ["GGUF model split by gguf-split into 3 parts: read as one model"]
        );

        let err = |paths: &[PathBuf]| GgufSource::open_parts(paths).unwrap_err().to_string();
        // A part alone, parts out of order, a missing part, a part of another model.
        let e = err(&paths[..1]);
        assert!(
            e.contains("m-00001-of-00003.gguf") && e.contains("part 1 of 3"),
            "{e}"
        );
        let e = err(&[paths[0].clone(), paths[2].clone(), paths[1].clone()]);
        assert!(
            e.contains("m-00003-of-00003.gguf") && e.contains("split.no is 2"),
            "{e}"
        );
        std::fs::rename(&paths[1], tmp.path().join("elsewhere.gguf")).unwrap();
        let e = err(&paths);
        assert!(
            e.contains("m-00002-of-00003.gguf") && e.contains("missing"),
            "{e}"
        );
        let two = fixture().split(3, false);
        two[1].write(&paths[1]).unwrap();
        let e = err(&paths);
        assert!(
            e.contains("m-00002-of-00003.gguf") && e.contains("split.count is 2"),
            "{e}"
        );
        // Parts that do not add up to split.tensors.count.
        let mut short = fixture().split(2, false);
        short[1] = GgufWriter::new();
        short[1]
            .add_metadata("split.no", provsearch_formats::gguf::GgufValue::U16(1))
            .add_metadata("split.count", provsearch_formats::gguf::GgufValue::U16(3));
        short[1].write(&paths[1]).unwrap();
        let e = err(&paths);
        assert!(e.contains("split.tensors.count is 6"), "{e}");
    }
}
