//! An in-memory checkpoint (named `f32` tensors plus the snapshot's other files) read from and written to real
//! Hugging Face snapshot directories with the `safetensors` crate's serializer.

use anyhow::{bail, Context, Result};
use half::{bf16, f16};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Storage dtype of written weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// 32-bit floats.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
}

/// One tensor, held as `f32` whatever its storage dtype.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Name.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<f32>,
    /// Integer tensors (e.g. `position_ids`) are kept verbatim as I64.
    pub int64: Option<Vec<i64>>,
}

impl Tensor {
    /// A float tensor.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        Tensor {
            name: name.into(),
            shape,
            data,
            int64: None,
        }
    }

    /// Whether this is a float weight (not an integer buffer).
    pub fn is_float(&self) -> bool {
        self.int64.is_none()
    }
}

/// A checkpoint: tensors plus the non-weight files of its snapshot (config.json, tokenizer files, README).
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// Tensors, in name order.
    pub tensors: Vec<Tensor>,
    /// Other files by name (relative path) and content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Checkpoint {
    /// Find a tensor.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Find a tensor, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        self.tensors.iter_mut().find(|t| t.name == name)
    }

    /// Read a snapshot directory: every `*.safetensors` file plus the small text files beside them.
    pub fn read(dir: &Path) -> Result<Checkpoint> {
        let mut ckpt = Checkpoint::default();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.ends_with(".safetensors") {
                let bytes = std::fs::read(&path)?;
                let st = safetensors::SafeTensors::deserialize(&bytes)
                    .with_context(|| format!("{}", path.display()))?;
                for (tname, view) in st.tensors() {
                    ckpt.tensors.push(decode(&tname, &view)?);
                }
            } else if name != "model.safetensors.index.json"
                && std::fs::metadata(&path)?.len() < 64 << 20
            {
                ckpt.files.insert(name, std::fs::read(&path)?);
            }
        }
        ckpt.tensors.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ckpt)
    }

    /// Write the snapshot: `model.safetensors` (or `shards` files plus an index), and every other file.
    pub fn write(&self, dir: &Path, storage: Storage, shards: usize) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, bytes) in &self.files {
            std::fs::write(dir.join(name), bytes)?;
        }
        let encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> =
            self.tensors.iter().map(|t| encode(t, storage)).collect();
        let shards = shards.max(1);
        if shards == 1 {
            write_file(&dir.join("model.safetensors"), &encoded)?;
            return Ok(());
        }
        let per = encoded.len().div_ceil(shards);
        let mut weight_map = serde_json::Map::new();
        for (i, chunk) in encoded.chunks(per.max(1)).enumerate() {
            let file = format!("model-{:05}-of-{:05}.safetensors", i + 1, shards);
            for t in chunk {
                weight_map.insert(t.0.clone(), serde_json::Value::String(file.clone()));
            }
            write_file(&dir.join(&file), chunk)?;
        }
        let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
        std::fs::write(
            dir.join("model.safetensors.index.json"),
            serde_json::to_vec_pretty(&index)?,
        )?;
        Ok(())
    }

    /// Write one safetensors file with the tensors' data in the given order (the `safetensors` serializer
    /// always sorts by dtype and name; real checkpoints written by other tools do not).
    pub fn write_in_order(&self, path: &Path, storage: Storage, order: &[usize]) -> Result<()> {
        let encoded: Vec<_> = order
            .iter()
            .map(|&i| encode(&self.tensors[i], storage))
            .collect();
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
        let mut offset = 0usize;
        for (name, dtype, shape, bytes) in &encoded {
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": dtype_name(*dtype), "shape": shape, "data_offsets": [offset, offset + bytes.len()]}),
            );
            offset += bytes.len();
        }
        let mut text = serde_json::to_string(&header)?;
        while text.len() % 8 != 0 {
            text.push(' ');
        }
        let mut out = Vec::with_capacity(8 + text.len() + offset);
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        for (_, _, _, bytes) in &encoded {
            out.extend_from_slice(bytes);
        }
        std::fs::write(path, out)?;
        Ok(())
    }
}

fn dtype_name(d: Dtype) -> &'static str {
    match d {
        Dtype::F16 => "F16",
        Dtype::BF16 => "BF16",
        Dtype::I64 => "I64",
        _ => "F32",
    }
}

fn write_file(path: &Path, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) -> Result<()> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| Ok((n.clone(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    let meta = Some(std::collections::HashMap::from([(
        "format".to_string(),
        "pt".to_string(),
    )]));
    safetensors::serialize_to_file(views, meta, path)?;
    Ok(())
}

fn encode(t: &Tensor, storage: Storage) -> (String, Dtype, Vec<usize>, Vec<u8>) {
    if let Some(ints) = &t.int64 {
        return (
            t.name.clone(),
            Dtype::I64,
            t.shape.clone(),
            ints.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
    }
    let (dtype, bytes): (Dtype, Vec<u8>) = match storage {
        Storage::F32 => (
            Dtype::F32,
            t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        Storage::F16 => (
            Dtype::F16,
            t.data
                .iter()
                .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                .collect(),
        ),
        Storage::BF16 => (
            Dtype::BF16,
            t.data
                .iter()
                .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
                .collect(),
        ),
    };
    (t.name.clone(), dtype, t.shape.clone(), bytes)
}

fn decode(name: &str, view: &TensorView<'_>) -> Result<Tensor> {
    let b = view.data();
    let shape = view.shape().to_vec();
    let data: Vec<f32> = match view.dtype() {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::I64 => {
            let ints: Vec<i64> = b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect();
            return Ok(Tensor {
                name: name.to_string(),
                shape,
                data: Vec::new(),
                int64: Some(ints),
            });
        }
        other => bail!("{name}: dtype {other:?} not supported by the dataset tools"),
    };
    Ok(Tensor::new(name, shape, data))
}
