//! One view over a checkpoint's tensors, whatever the file format: names, logical shapes, and decoding of any
//! element range to `f32`. Signals are computed against [`WeightSource`] only.
//!
//! Sources: [`SafetensorsSource`] (float safetensors files or shards), [`quantized::QuantizedSource`] (GPTQ,
//! AWQ, bitsandbytes and FP8 safetensors checkpoints, dequantized on the fly), [`gguf::GgufSource`]
//! (llama.cpp files).

pub mod gguf;
pub mod quantized;

use crate::error::{Error, Result};
use provsearch_formats::dtype::Dtype;
use provsearch_formats::safetensors::{SafetensorsFile, TensorInfo};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Name, logical shape and storage facts of one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorMeta {
    /// Tensor name (Hugging Face naming; GGUF names are mapped).
    pub name: String,
    /// Logical row-major shape.
    pub shape: Vec<u64>,
    /// Stored dtype or quant type name (`"BF16"`, `"Q4_1"`, ...).
    pub dtype: String,
    /// Whether [`WeightSource::read_f32`] yields real weight values (float storage or a supported
    /// dequantisation). Packed integers without a scheme are `false` and never enter a signal.
    pub is_weight: bool,
    /// File that holds the tensor (for error messages).
    pub file: PathBuf,
}

impl TensorMeta {
    /// Number of logical elements.
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A checkpoint's tensors.
pub trait WeightSource: Sync {
    /// All tensors, in a stable order (sorted by name).
    fn tensors(&self) -> &[TensorMeta];
    /// Decode logical elements `start .. start + out.len()` of tensor `index` into `out`.
    fn read_f32(&self, index: usize, start: u64, out: &mut [f32]) -> Result<()>;
    /// Hint that elements `start .. start + count` of tensor `index` will not be read again soon (streaming
    /// readers call it behind them to keep the resident set small). The default does nothing.
    fn release(&self, _index: usize, _start: u64, _count: u64) {}
    /// The weight files (for digests), sorted.
    fn files(&self) -> Vec<PathBuf>;
    /// Quantisation scheme of the stored weights, if any.
    fn quantization(&self) -> Option<String> {
        None
    }
    /// Remarks about how the weights were read (dequantisation, unsupported schemes), for the fingerprint.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// One or more safetensors files (a single file or the shards of an index).
pub struct SafetensorsSource {
    files: Vec<SafetensorsFile>,
    tensors: Vec<TensorMeta>,
    /// For each entry of `tensors`: (file index, header entry).
    locations: Vec<(usize, TensorInfo)>,
}

impl SafetensorsSource {
    /// Open the given files. Tensor names must be unique across files.
    pub fn open(paths: &[PathBuf]) -> Result<SafetensorsSource> {
        let mut files = Vec::with_capacity(paths.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut located = Vec::new();
        for (file_index, path) in paths.iter().enumerate() {
            let file = SafetensorsFile::open(path)?;
            for info in file.tensors() {
                if seen.insert(info.name.clone(), file_index).is_some() {
                    return Err(Error::DuplicateTensor {
                        path: path.clone(),
                        tensor: info.name.clone(),
                    });
                }
                located.push((file_index, info.clone()));
            }
            files.push(file);
        }
        located.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        let tensors = located
            .iter()
            .map(|(fi, info)| TensorMeta {
                name: info.name.clone(),
                shape: info.shape.clone(),
                dtype: info.dtype.name().to_string(),
                is_weight: info.dtype.is_float(),
                file: paths[*fi].clone(),
            })
            .collect();
        Ok(SafetensorsSource {
            files,
            tensors,
            locations: located,
        })
    }

    /// The stored dtype of tensor `index`.
    pub fn dtype(&self, index: usize) -> Option<Dtype> {
        self.locations.get(index).map(|(_, info)| info.dtype)
    }

    /// The file and header entry of tensor `index` (for readers of packed layouts).
    pub fn raw(&self, index: usize) -> Option<(&SafetensorsFile, &TensorInfo)> {
        let (file_index, info) = self.locations.get(index)?;
        Some((self.files.get(*file_index)?, info))
    }
}

impl WeightSource for SafetensorsSource {
    fn tensors(&self) -> &[TensorMeta] {
        &self.tensors
    }

    fn read_f32(&self, index: usize, start: u64, out: &mut [f32]) -> Result<()> {
        let (file_index, info) = self.locations.get(index).ok_or_else(|| {
            Error::no_weights(Path::new("?"), format!("tensor index {index} out of range"))
        })?;
        Ok(self.files[*file_index].read_f32(info, start, out)?)
    }

    fn release(&self, index: usize, start: u64, count: u64) {
        if let Some((file_index, info)) = self.locations.get(index) {
            self.files[*file_index].release(info, start, count);
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.files.iter().map(|f| f.path().to_path_buf()).collect();
        v.sort();
        v
    }
}
