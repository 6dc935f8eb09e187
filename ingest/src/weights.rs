//! One view over a checkpoint's tensors, whatever the file format: names, logical shapes, and decoding of any
//! element range to `f32`. Signals are computed against [`WeightSource`] only.
//!
//! Sources: [`SafetensorsSource`] (float safetensors files or shards), [`quantized::QuantizedSource`] (GPTQ,
//! AWQ, bitsandbytes, FP8, MLX, compressed-tensors and microscaled safetensors checkpoints, dequantized on the
//! fly), [`gguf::GgufSource`] (llama.cpp files), and [`native::NativeRotary`] over a safetensors source in
//! Mistral's and Meta's native layout (Q/K rows in Hugging Face's order).

pub mod gguf;
pub mod native;
pub mod quantized;

use crate::error::{Error, Result};
use provsearch_formats::dtype::{decode_to_f32, Dtype};
use provsearch_formats::safetensors::{SafetensorsFile, TensorInfo};
use provsearch_formats::Error as FormatError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// [`WeightSource::read_f32`] for data read once: the embedding pass (front to back, in large chunks) and
    /// the sampled rows and vectors. The same values, but a source may read the file directly instead of
    /// through its memory map, which saves setting up and tearing down page-table entries: for a chunk, one per
    /// page; for a sparse read, a whole page-cache folio (up to 2 MiB) that the kernel maps around the access.
    /// The default reads through [`WeightSource::read_f32`].
    fn read_f32_streaming(&self, index: usize, start: u64, out: &mut [f32]) -> Result<()> {
        self.read_f32(index, start, out)
    }
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
    /// The same files opened for `pread` ([`WeightSource::read_f32_streaming`]).
    #[cfg_attr(not(unix), allow(dead_code))]
    handles: Vec<std::fs::File>,
    tensors: Vec<TensorMeta>,
    /// For each entry of `tensors`: (file index, header entry).
    locations: Vec<(usize, TensorInfo)>,
    /// For each entry of `tensors`: whether it has been read through the memory map ([`WeightSource::read_f32`]
    /// or [`SafetensorsSource::raw`]), so that [`WeightSource::release`] counts it towards dropping the map's
    /// pages. A tensor read only with `pread` ([`WeightSource::read_f32_streaming`]) left nothing mapped.
    mapped: Vec<AtomicBool>,
}

impl SafetensorsSource {
    /// Open the given files. Tensor names must be unique across files.
    pub fn open(paths: &[PathBuf]) -> Result<SafetensorsSource> {
        let mut files = Vec::with_capacity(paths.len());
        let mut handles = Vec::with_capacity(paths.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut located = Vec::new();
        for (file_index, path) in paths.iter().enumerate() {
            let file = SafetensorsFile::open(path)?;
            handles.push(std::fs::File::open(path).map_err(|e| FormatError::io(path, e))?);
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
        let mapped = located.iter().map(|_| AtomicBool::new(false)).collect();
        Ok(SafetensorsSource {
            files,
            handles,
            tensors,
            locations: located,
            mapped,
        })
    }

    /// The stored dtype of tensor `index`.
    pub fn dtype(&self, index: usize) -> Option<Dtype> {
        self.locations.get(index).map(|(_, info)| info.dtype)
    }

    /// The file and header entry of tensor `index` (for readers of packed layouts).
    pub fn raw(&self, index: usize) -> Option<(&SafetensorsFile, &TensorInfo)> {
        let (file_index, info) = self.locations.get(index)?;
        // The caller reads the tensor through the map: its pages are for `release` to drop.
        self.mapped[index].store(true, Ordering::Relaxed);
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
        self.mapped[index].store(true, Ordering::Relaxed);
        Ok(self.files[*file_index].read_f32(info, start, out)?)
    }

    /// Float tensors are read with `pread` into a reused per-thread buffer and decoded like
    /// [`SafetensorsFile::read_f32`]; a range that read would reject goes to it for the error.
    #[cfg(unix)]
    fn read_f32_streaming(&self, index: usize, start: u64, out: &mut [f32]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        thread_local! {
            static BYTES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let Some((file_index, info)) = self.locations.get(index) else {
            return self.read_f32(index, start, out);
        };
        let size = info.dtype.size() as u64;
        let count = out.len() as u64;
        let in_range = start
            .checked_add(count)
            .is_some_and(|stop| stop <= info.numel())
            && info.numel().checked_mul(size) == Some(info.len);
        let file = &self.files[*file_index];
        if !in_range || !info.dtype.is_float() {
            return self.read_f32(index, start, out);
        }
        let (path, handle) = (file.path(), &self.handles[*file_index]);
        let offset = info.offset + start * size;
        if info.dtype == Dtype::F32 && cfg!(target_endian = "little") {
            // Little-endian F32 bytes are the values themselves (`f32::from_le_bytes` is a bit copy here), so they
            // are read straight into `out`, without the copy through the byte buffer.
            // SAFETY: the byte view covers exactly `out`'s memory, `u8` has alignment 1, and every bit pattern
            // written into it is a valid `f32`.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(
                    out.as_mut_ptr().cast::<u8>(),
                    std::mem::size_of_val(out),
                )
            };
            return handle
                .read_exact_at(bytes, offset)
                .map_err(|e| FormatError::io(path, e).into());
        }
        BYTES.with(|bytes| -> Result<()> {
            let mut bytes = bytes.borrow_mut();
            bytes.resize((count * size) as usize, 0);
            handle
                .read_exact_at(&mut bytes, offset)
                .map_err(|e| FormatError::io(path, e))?;
            decode_to_f32(info.dtype, &bytes, out);
            Ok(())
        })
    }

    fn release(&self, index: usize, start: u64, count: u64) {
        let mapped = self
            .mapped
            .get(index)
            .is_some_and(|m| m.load(Ordering::Relaxed));
        if let (true, Some((file_index, info))) = (mapped, self.locations.get(index)) {
            self.files[*file_index].release(info, start, count);
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.files.iter().map(|f| f.path().to_path_buf()).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::{Dtype as StDtype, TensorView};

    #[test]
    fn streaming_reads_equal_mapped_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let values: Vec<f32> = (0..600).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        let f64_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| (*v as f64 * 1.1).to_le_bytes())
            .collect();
        let i64_bytes: Vec<u8> = (0..600i64).flat_map(|v| v.to_le_bytes()).collect();
        let views = vec![
            (
                "a",
                TensorView::new(StDtype::F32, vec![20, 30], &f32_bytes).unwrap(),
            ),
            (
                "b",
                TensorView::new(StDtype::F16, vec![20, 30], &f16_bytes).unwrap(),
            ),
            (
                "c",
                TensorView::new(StDtype::BF16, vec![600], &bf16_bytes).unwrap(),
            ),
            (
                "d",
                TensorView::new(StDtype::F64, vec![600], &f64_bytes).unwrap(),
            ),
            (
                "e",
                TensorView::new(StDtype::I64, vec![600], &i64_bytes).unwrap(),
            ),
        ];
        safetensors::serialize_to_file(views, None, &path).unwrap();
        let source = SafetensorsSource::open(&[path]).unwrap();
        // Streaming reads leave nothing mapped for `release` to drop; a mapped read or `raw` marks the tensor.
        let mut out = vec![0f32; 600];
        source.read_f32_streaming(0, 0, &mut out).unwrap();
        assert!(!source.mapped[0].load(Ordering::Relaxed));
        source.read_f32(0, 0, &mut out).unwrap();
        assert!(source.mapped[0].load(Ordering::Relaxed));
        assert!(!source.mapped[1].load(Ordering::Relaxed));
        source.raw(1).unwrap();
        assert!(source.mapped[1].load(Ordering::Relaxed));
        for index in 0..source.tensors().len() {
            for (start, len) in [(0, 600), (0, 1), (599, 1), (30, 90), (7, 333)] {
                let (mut mapped, mut streamed) = (vec![0f32; len], vec![0f32; len]);
                source.read_f32(index, start, &mut mapped).unwrap();
                source
                    .read_f32_streaming(index, start, &mut streamed)
                    .unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&mapped), bits(&streamed), "tensor {index} at {start}");
            }
            let mut out = vec![0f32; 2];
            assert!(source.read_f32_streaming(index, 599, &mut out).is_err());
            assert!(source
                .read_f32_streaming(index, u64::MAX, &mut out)
                .is_err());
        }
        assert!(source.read_f32_streaming(99, 0, &mut [0.0]).is_err());
    }
}
