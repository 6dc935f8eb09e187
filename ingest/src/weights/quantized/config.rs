//! The quantization parameters a checkpoint declares: `quantization_config` in config.json (transformers,
//! optimum), `quantization` in config.json (MLX), `quantize_config.json` (AutoGPTQ, GPTQModel) and
//! `quant_config.json` (AutoAWQ).

use crate::error::Result;
use provsearch_formats::Error as FormatError;
use serde_json::{Map, Value};
use std::path::Path;

/// Declared quantization parameters; every field is optional because each tool writes a different subset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantConfig {
    /// `quant_method`, lower-cased (`"gptq"`, `"awq"`, `"bitsandbytes"`, `"fp8"`, ...).
    pub method: Option<String>,
    /// Bits per weight (`bits`, AutoAWQ's `w_bit`).
    pub bits: Option<u32>,
    /// Inputs per group (`group_size`, AutoAWQ's `q_group_size`); -1 means one group per row.
    pub group_size: Option<i64>,
    /// GPTQ act-order (`desc_act`).
    pub desc_act: Option<bool>,
    /// GPTQ symmetric quantization (`sym`).
    pub sym: Option<bool>,
    /// GPTQ `checkpoint_format` (`"gptq"` = v1, `"gptq_v2"`, `"marlin"`, ...), lower-cased.
    pub checkpoint_format: Option<String>,
    /// AWQ kernel `version` (`"gemm"`, `"gemv"`, ...), lower-cased.
    pub version: Option<String>,
    /// AWQ `zero_point`.
    pub zero_point: Option<bool>,
    /// FP8 `weight_block_size` (`[rows, cols]`).
    pub weight_block_size: Option<[u64; 2]>,
    /// FP8 `fmt` (`"e4m3"`), bitsandbytes `bnb_4bit_quant_type`, MLX `mode` (`"affine"`, `"mxfp4"`).
    pub format: Option<String>,
    /// MLX per-module settings (mixed-precision recipes): module path → `(bits, group_size)`, or `None` for
    /// a module left in full precision (`false`).
    pub module_overrides: Vec<(String, Option<(u32, i64)>)>,
}

impl QuantConfig {
    /// Read the declarations beside a checkpoint; `Ok(None)` when there are none. config.json's
    /// `quantization_config` comes first; the tool-specific files fill the fields it leaves out.
    pub fn load(root: &Path) -> Result<Option<QuantConfig>> {
        let mut found = false;
        let mut config = QuantConfig::default();
        if let Some(v) = read_json(&root.join("config.json"))? {
            if let Some(q) = v.get("quantization_config").and_then(Value::as_object) {
                config.fill(q);
                found = true;
            }
            // MLX (mlx-lm) writes `quantization`, without a `quant_method`.
            if let Some(q) = v.get("quantization").and_then(Value::as_object) {
                config.fill(q);
                config.method.get_or_insert_with(|| "mlx".into());
                config.module_overrides = q
                    .iter()
                    .filter_map(|(module, setting)| {
                        let int = |k: &str| setting.get(k).and_then(Value::as_i64);
                        match setting {
                            Value::Bool(false) => Some((module.clone(), None)),
                            Value::Object(_) => {
                                let bits = int("bits").and_then(|b| u32::try_from(b).ok())?;
                                Some((module.clone(), Some((bits, int("group_size")?))))
                            }
                            _ => None,
                        }
                    })
                    .collect();
                found = true;
            }
        }
        for name in ["quantize_config.json", "quant_config.json"] {
            if let Some(Value::Object(q)) = read_json(&root.join(name))? {
                config.fill(&q);
                found = true;
            }
        }
        Ok(found.then_some(config))
    }

    /// Set every field still unset from a JSON object.
    pub fn fill(&mut self, q: &Map<String, Value>) {
        let text = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| q.get(*k).and_then(Value::as_str))
                .map(str::to_ascii_lowercase)
        };
        let int = |keys: &[&str]| keys.iter().find_map(|k| q.get(*k).and_then(Value::as_i64));
        let flag = |key: &str| q.get(key).and_then(Value::as_bool);
        self.method = self.method.take().or_else(|| text(&["quant_method"]));
        // compressed-tensors nests it: `config_groups.<group>.weights.num_bits` (the first group's).
        let nested_bits = || {
            q.get("config_groups")?
                .as_object()?
                .values()
                .find_map(|g| g.get("weights")?.get("num_bits")?.as_i64())
        };
        self.bits = self.bits.or_else(|| {
            int(&["bits", "w_bit"])
                .or_else(nested_bits)
                .and_then(|b| u32::try_from(b).ok())
        });
        self.group_size = self
            .group_size
            .or_else(|| int(&["group_size", "q_group_size"]));
        self.desc_act = self.desc_act.or_else(|| flag("desc_act"));
        self.sym = self.sym.or_else(|| flag("sym"));
        self.checkpoint_format = self
            .checkpoint_format
            .take()
            .or_else(|| text(&["checkpoint_format"]));
        self.version = self.version.take().or_else(|| text(&["version"]));
        self.zero_point = self.zero_point.or_else(|| flag("zero_point"));
        self.weight_block_size = self.weight_block_size.or_else(|| {
            let a = q.get("weight_block_size")?.as_array()?;
            match a.as_slice() {
                [r, c] => Some([r.as_u64()?, c.as_u64()?]),
                _ => None,
            }
        });
        self.format = self
            .format
            .take()
            .or_else(|| text(&["fmt", "bnb_4bit_quant_type", "mode"]));
    }

    /// MLX `(bits, group_size)` for a module (its tensor name without `.weight`): its own setting in a
    /// mixed-precision recipe, else the model-wide one.
    pub fn mlx_params(&self, module: &str) -> Option<(u32, i64)> {
        match self.module_overrides.iter().find(|(m, _)| m == module) {
            Some((_, setting)) => *setting,
            None => self.bits.zip(self.group_size),
        }
    }
}

/// A JSON file, `Ok(None)` when it does not exist.
fn read_json(path: &Path) -> Result<Option<Value>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FormatError::io(path, e).into()),
    };
    let json_error = |detail: String| {
        FormatError::Json {
            path: path.to_path_buf(),
            detail,
        }
        .into()
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| json_error(format!("not UTF-8 (at byte {})", e.valid_up_to())))?;
    // config.json as Python writes it (non-finite floats as bare words), like the model config reader.
    provsearch_formats::python_json::parse(text)
        .map(Some)
        .map_err(|e| json_error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_wins_and_tool_files_fill_in() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(QuantConfig::load(tmp.path()).unwrap(), None);
        std::fs::write(
            tmp.path().join("config.json"),
            r#"{"model_type":"llama","quantization_config":{"quant_method":"GPTQ","bits":4,"desc_act":true}}"#,
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("quantize_config.json"),
            r#"{"bits":8,"group_size":128,"sym":false,"checkpoint_format":"gptq"}"#,
        )
        .unwrap();
        let c = QuantConfig::load(tmp.path()).unwrap().unwrap();
        assert_eq!(c.method.as_deref(), Some("gptq"));
        assert_eq!(c.bits, Some(4));
        assert_eq!(c.group_size, Some(128));
        assert_eq!((c.desc_act, c.sym), (Some(true), Some(false)));
        assert_eq!(c.checkpoint_format.as_deref(), Some("gptq"));

        std::fs::write(tmp.path().join("quant_config.json"), "{ not json").unwrap();
        let err = QuantConfig::load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("quant_config.json"), "{err}");
    }

    #[test]
    fn autoawq_spelling() {
        let mut c = QuantConfig::default();
        let v: Value = serde_json::from_str(
            r#"{"zero_point":true,"q_group_size":64,"w_bit":4,"version":"GEMM"}"#,
        )
        .unwrap();
        c.fill(v.as_object().unwrap());
        assert_eq!(
            (c.bits, c.group_size, c.version.as_deref(), c.zero_point),
            (Some(4), Some(64), Some("gemm"), Some(true))
        );
    }
}
