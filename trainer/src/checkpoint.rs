//! Hugging Face snapshot directories: F16 `model.safetensors` with
//! `{"format": "pt"}` metadata, `config.json`, `generation_config.json`,
//! `tokenizer.json` and a model card (`README.md`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use half::f16;
use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;

use crate::model::{check_weights, ModelConfig, Weights};

/// Serialise `w` as F16 safetensors bytes (tensors sorted by name, so equal
/// weights give equal bytes).
pub fn safetensors_f16(w: &Weights) -> Result<Vec<u8>> {
    let mut bufs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(w.len());
    for (name, t) in w {
        let v: Vec<f16> = t.to_dtype(DType::F16)?.flatten_all()?.to_vec1::<f16>()?;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        bufs.push((name.clone(), t.dims().to_vec(), bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = bufs
        .iter()
        .map(|(n, s, b)| Ok((n.clone(), TensorView::new(Dtype::F16, s.clone(), b)?)))
        .collect::<Result<_>>()?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    Ok(safetensors::serialize(views, Some(meta))?)
}

/// Read every tensor of a safetensors file as F32.
pub fn load_safetensors(path: &Path, dev: &Device) -> Result<Weights> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("parsing {}", path.display()))?;
    let mut w = Weights::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            other => bail!(
                "{}: tensor {name} has unsupported dtype {other:?}",
                path.display()
            ),
        };
        w.insert(name, Tensor::from_vec(data, shape, dev)?);
    }
    Ok(w)
}

/// A loaded snapshot directory.
pub struct Snapshot {
    pub config: ModelConfig,
    pub weights: Weights,
}

/// Load `dir/config.json` and `dir/model.safetensors`.
pub fn load_snapshot(dir: &Path, dev: &Device) -> Result<Snapshot> {
    let cfg_text = std::fs::read_to_string(dir.join("config.json"))
        .with_context(|| format!("reading {}/config.json", dir.display()))?;
    let config = ModelConfig::from_hf_json(&serde_json::from_str(&cfg_text)?)?;
    let weights = load_safetensors(&dir.join("model.safetensors"), dev)?;
    check_weights(&config, &weights).with_context(|| format!("snapshot {}", dir.display()))?;
    Ok(Snapshot { config, weights })
}

/// What goes into the model card.
pub struct Card<'a> {
    pub name: &'a str,
    /// Hugging Face ids of the parents (`base_model:`), empty for from-scratch models.
    pub base_models: &'a [String],
    /// `base_model_relation:` (only the values the Hub knows: "finetune", ...).
    pub relation: Option<&'a str>,
    pub description: &'a str,
    pub command: &'a str,
    pub details: Vec<(String, String)>,
}

impl Card<'_> {
    pub fn render(&self) -> String {
        let mut s = String::from(
            "---\nlicense: apache-2.0\nlibrary_name: transformers\npipeline_tag: text-generation\n",
        );
        match self.base_models {
            [] => {}
            [one] => s.push_str(&format!("base_model: {one}\n")),
            many => {
                s.push_str("base_model:\n");
                for m in many {
                    s.push_str(&format!("- {m}\n"));
                }
            }
        }
        if let Some(r) = self.relation {
            s.push_str(&format!("base_model_relation: {r}\n"));
        }
        s.push_str("tags:\n- provsearch-zoo\n---\n\n");
        s.push_str(&format!(
            "# {}\n\n{}\n\n",
            self.name,
            self.description.trim()
        ));
        s.push_str("## Training\n\n| | |\n|---|---|\n");
        for (k, v) in &self.details {
            s.push_str(&format!("| {k} | {v} |\n"));
        }
        s.push_str("\n## How it was made\n\nRun from `trainer/` of the provsearch repository, after `./fetch-corpus.sh`:\n\n```sh\n");
        s.push_str(self.command);
        s.push_str("\n```\n");
        s
    }
}

/// Write a complete snapshot directory.
pub fn write_snapshot(
    dir: &Path,
    cfg: &ModelConfig,
    w: &Weights,
    tokenizer_json: &[u8],
    card: &Card<'_>,
) -> Result<()> {
    check_weights(cfg, w)?;
    std::fs::create_dir_all(dir)?;
    let pretty =
        |v: &serde_json::Value| -> Result<String> { Ok(serde_json::to_string_pretty(v)? + "\n") };
    std::fs::write(dir.join("config.json"), pretty(&cfg.to_hf_json())?)?;
    let gen = json!({
        "_from_model_config": true,
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id,
        "transformers_version": "4.46.3",
    });
    std::fs::write(dir.join("generation_config.json"), pretty(&gen)?)?;
    std::fs::write(dir.join("model.safetensors"), safetensors_f16(w)?)?;
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json)?;
    std::fs::write(dir.join("README.md"), card.render())?;
    Ok(())
}
