//! Tiny Llama and GPT-2 causal LMs over plain candle tensors, with the exact
//! Hugging Face tensor names and layouts.
//!
//! Only ops that have a backward pass are used: `rms_norm_slow`,
//! `layer_norm_slow`, `rope_slow` and `ops::softmax` (the fused variants
//! silently stop gradients).

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::ops::{layer_norm_slow, rms_norm_slow, softmax};
use candle_nn::rotary_emb::rope_slow;
use serde_json::{json, Value};

use crate::rng::Rng;

/// Weights by Hugging Face tensor name.
pub type Weights = BTreeMap<String, Tensor>;

/// Which Hugging Face architecture a model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// `LlamaForCausalLM` (RMSNorm, RoPE, SwiGLU, untied lm_head).
    Llama,
    /// `GPT2LMHeadModel` (LayerNorm, learned positions, GELU, Conv1D, tied head).
    Gpt2,
}

/// Model hyper-parameters (the subset that `config.json` carries).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    /// Llama only: per-head width when it is not `hidden / heads` (HF's
    /// `head_dim`; after width pruning of the residual stream the heads keep
    /// their width while `hidden_size` shrinks, as in Llama-3.1-Minitron).
    /// `None`: `hidden / heads`.
    pub head_dim: Option<usize>,
    pub intermediate: usize,
    pub max_positions: usize,
    pub eps: f64,
    pub rope_theta: f64,
    pub bos_token_id: u32,
    pub eos_token_id: u32,
}

impl ModelConfig {
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden / self.heads)
    }

    /// A real transformers `config.json`.
    pub fn to_hf_json(&self) -> Value {
        match self.arch {
            Arch::Llama => json!({
                "architectures": ["LlamaForCausalLM"],
                "attention_bias": false,
                "attention_dropout": 0.0,
                "bos_token_id": self.bos_token_id,
                "eos_token_id": self.eos_token_id,
                "head_dim": self.head_dim(),
                "hidden_act": "silu",
                "hidden_size": self.hidden,
                "initializer_range": 0.02,
                "intermediate_size": self.intermediate,
                "max_position_embeddings": self.max_positions,
                "mlp_bias": false,
                "model_type": "llama",
                "num_attention_heads": self.heads,
                "num_hidden_layers": self.layers,
                "num_key_value_heads": self.heads,
                "pretraining_tp": 1,
                "rms_norm_eps": self.eps,
                "rope_scaling": null,
                "rope_theta": self.rope_theta,
                "tie_word_embeddings": false,
                "torch_dtype": "float16",
                "transformers_version": "4.46.3",
                "use_cache": true,
                "vocab_size": self.vocab_size,
            }),
            Arch::Gpt2 => json!({
                "activation_function": "gelu_new",
                "architectures": ["GPT2LMHeadModel"],
                "attn_pdrop": 0.1,
                "bos_token_id": self.bos_token_id,
                "embd_pdrop": 0.1,
                "eos_token_id": self.eos_token_id,
                "initializer_range": 0.02,
                "layer_norm_epsilon": self.eps,
                "model_type": "gpt2",
                "n_ctx": self.max_positions,
                "n_embd": self.hidden,
                "n_head": self.heads,
                "n_inner": null,
                "n_layer": self.layers,
                "n_positions": self.max_positions,
                "reorder_and_upcast_attn": false,
                "resid_pdrop": 0.1,
                "scale_attn_by_inverse_layer_idx": false,
                "scale_attn_weights": true,
                "summary_activation": null,
                "summary_first_dropout": 0.1,
                "summary_proj_to_labels": true,
                "summary_type": "cls_index",
                "summary_use_proj": true,
                "tie_word_embeddings": true,
                "torch_dtype": "float16",
                "transformers_version": "4.46.3",
                "use_cache": true,
                "vocab_size": self.vocab_size,
            }),
        }
    }

    /// Parse a `config.json` written by [`ModelConfig::to_hf_json`] (or a real
    /// one of the same two architectures).
    pub fn from_hf_json(v: &Value) -> Result<Self> {
        let u = |k: &str| -> Result<usize> {
            v.get(k)
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .with_context(|| format!("config.json: missing {k}"))
        };
        let tok = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
        match v.get("model_type").and_then(Value::as_str) {
            Some("llama") => Ok(ModelConfig {
                arch: Arch::Llama,
                vocab_size: u("vocab_size")?,
                hidden: u("hidden_size")?,
                layers: u("num_hidden_layers")?,
                heads: u("num_attention_heads")?,
                head_dim: v
                    .get("head_dim")
                    .and_then(Value::as_u64)
                    .map(|x| x as usize),
                intermediate: u("intermediate_size")?,
                max_positions: u("max_position_embeddings")?,
                eps: v
                    .get("rms_norm_eps")
                    .and_then(Value::as_f64)
                    .unwrap_or(1e-5),
                rope_theta: v
                    .get("rope_theta")
                    .and_then(Value::as_f64)
                    .unwrap_or(10000.0),
                bos_token_id: tok("bos_token_id"),
                eos_token_id: tok("eos_token_id"),
            }),
            Some("gpt2") => {
                let hidden = u("n_embd")?;
                Ok(ModelConfig {
                    arch: Arch::Gpt2,
                    vocab_size: u("vocab_size")?,
                    hidden,
                    layers: u("n_layer")?,
                    heads: u("n_head")?,
                    head_dim: None,
                    intermediate: v
                        .get("n_inner")
                        .and_then(Value::as_u64)
                        .map(|x| x as usize)
                        .unwrap_or(4 * hidden),
                    max_positions: u("n_positions")?,
                    eps: v
                        .get("layer_norm_epsilon")
                        .and_then(Value::as_f64)
                        .unwrap_or(1e-5),
                    rope_theta: 0.0,
                    bos_token_id: tok("bos_token_id"),
                    eos_token_id: tok("eos_token_id"),
                })
            }
            other => bail!("config.json: unsupported model_type {other:?}"),
        }
    }

    /// Every stored tensor: name, shape and how a fresh model initialises it,
    /// in a fixed order (the order random numbers are drawn in).
    pub fn tensor_specs(&self) -> Vec<(String, Vec<usize>, Init)> {
        let (v, h, i) = (self.vocab_size, self.hidden, self.intermediate);
        let std = 0.02;
        // GPT-2 / Llama-style scaled init of the residual output projections.
        let resid = std / (2.0 * self.layers as f64).sqrt();
        let mut out = Vec::new();
        let mut push = |n: String, s: Vec<usize>, init: Init| out.push((n, s, init));
        match self.arch {
            Arch::Llama => {
                // Width of the attention (all heads); equals h unless head_dim is set.
                let a = self.heads * self.head_dim();
                push(
                    "model.embed_tokens.weight".into(),
                    vec![v, h],
                    Init::Normal(std),
                );
                for l in 0..self.layers {
                    let p = format!("model.layers.{l}.");
                    push(format!("{p}input_layernorm.weight"), vec![h], Init::Ones);
                    push(
                        format!("{p}self_attn.q_proj.weight"),
                        vec![a, h],
                        Init::Normal(std),
                    );
                    push(
                        format!("{p}self_attn.k_proj.weight"),
                        vec![a, h],
                        Init::Normal(std),
                    );
                    push(
                        format!("{p}self_attn.v_proj.weight"),
                        vec![a, h],
                        Init::Normal(std),
                    );
                    push(
                        format!("{p}self_attn.o_proj.weight"),
                        vec![h, a],
                        Init::Normal(resid),
                    );
                    push(
                        format!("{p}post_attention_layernorm.weight"),
                        vec![h],
                        Init::Ones,
                    );
                    push(
                        format!("{p}mlp.gate_proj.weight"),
                        vec![i, h],
                        Init::Normal(std),
                    );
                    push(
                        format!("{p}mlp.up_proj.weight"),
                        vec![i, h],
                        Init::Normal(std),
                    );
                    push(
                        format!("{p}mlp.down_proj.weight"),
                        vec![h, i],
                        Init::Normal(resid),
                    );
                }
                push("model.norm.weight".into(), vec![h], Init::Ones);
                push("lm_head.weight".into(), vec![v, h], Init::Normal(std));
            }
            Arch::Gpt2 => {
                push(
                    "transformer.wte.weight".into(),
                    vec![v, h],
                    Init::Normal(std),
                );
                push(
                    "transformer.wpe.weight".into(),
                    vec![self.max_positions, h],
                    Init::Normal(0.01),
                );
                for l in 0..self.layers {
                    let p = format!("transformer.h.{l}.");
                    push(format!("{p}ln_1.weight"), vec![h], Init::Ones);
                    push(format!("{p}ln_1.bias"), vec![h], Init::Zeros);
                    // Conv1D stores (in, out).
                    push(
                        format!("{p}attn.c_attn.weight"),
                        vec![h, 3 * h],
                        Init::Normal(std),
                    );
                    push(format!("{p}attn.c_attn.bias"), vec![3 * h], Init::Zeros);
                    push(
                        format!("{p}attn.c_proj.weight"),
                        vec![h, h],
                        Init::Normal(resid),
                    );
                    push(format!("{p}attn.c_proj.bias"), vec![h], Init::Zeros);
                    push(format!("{p}ln_2.weight"), vec![h], Init::Ones);
                    push(format!("{p}ln_2.bias"), vec![h], Init::Zeros);
                    push(format!("{p}mlp.c_fc.weight"), vec![h, i], Init::Normal(std));
                    push(format!("{p}mlp.c_fc.bias"), vec![i], Init::Zeros);
                    push(
                        format!("{p}mlp.c_proj.weight"),
                        vec![i, h],
                        Init::Normal(resid),
                    );
                    push(format!("{p}mlp.c_proj.bias"), vec![h], Init::Zeros);
                }
                push("transformer.ln_f.weight".into(), vec![h], Init::Ones);
                push("transformer.ln_f.bias".into(), vec![h], Init::Zeros);
            }
        }
        out
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.tensor_specs()
            .iter()
            .map(|(_, s, _)| s.iter().product::<usize>())
            .sum()
    }

    /// Name of the input embedding and (untied) output head, if any.
    pub fn embedding_names(&self) -> (&'static str, Option<&'static str>) {
        match self.arch {
            Arch::Llama => ("model.embed_tokens.weight", Some("lm_head.weight")),
            Arch::Gpt2 => ("transformer.wte.weight", None),
        }
    }

    /// Prefix of layer `l`'s tensors.
    pub fn layer_prefix(&self, l: usize) -> String {
        match self.arch {
            Arch::Llama => format!("model.layers.{l}."),
            Arch::Gpt2 => format!("transformer.h.{l}."),
        }
    }
}

/// How a fresh tensor is initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Normal(f64),
    Ones,
    Zeros,
}

/// Fresh weights for `cfg`, drawn from `seed` (bit-reproducible).
pub fn init_weights(cfg: &ModelConfig, seed: u64, dev: &Device) -> Result<Weights> {
    let mut rng = Rng::new(seed, 0x1417);
    let mut w = Weights::new();
    for (name, shape, init) in cfg.tensor_specs() {
        let n: usize = shape.iter().product();
        let data = match init {
            Init::Normal(std) => rng.normal_vec(n, std),
            Init::Ones => vec![1.0f32; n],
            Init::Zeros => vec![0.0f32; n],
        };
        w.insert(name, Tensor::from_vec(data, shape, dev)?);
    }
    Ok(w)
}

/// Check that `w` holds exactly the tensors `cfg` expects, with their shapes.
pub fn check_weights(cfg: &ModelConfig, w: &Weights) -> Result<()> {
    let specs = cfg.tensor_specs();
    for (name, shape, _) in &specs {
        let t = w
            .get(name)
            .with_context(|| format!("missing tensor {name}"))?;
        if t.dims() != shape.as_slice() {
            bail!(
                "tensor {name}: shape {:?}, config wants {:?}",
                t.dims(),
                shape
            );
        }
    }
    if specs.len() != w.len() {
        let known: std::collections::BTreeSet<_> = specs.iter().map(|s| s.0.clone()).collect();
        let extra: Vec<_> = w.keys().filter(|k| !known.contains(*k)).collect();
        bail!("unexpected tensors: {extra:?}");
    }
    Ok(())
}

/// Trainable copies of `w` (one `Var` per tensor, same names).
pub fn to_vars(w: &Weights) -> Result<BTreeMap<String, Var>> {
    w.iter()
        .map(|(k, t)| Ok((k.clone(), Var::from_tensor(&t.to_dtype(DType::F32)?)?)))
        .collect()
}

/// The tensors behind `vars` (gradients flow back to the vars).
pub fn var_weights(vars: &BTreeMap<String, Var>) -> Weights {
    vars.iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect()
}

fn get<'a>(w: &'a Weights, name: &str) -> Result<&'a Tensor> {
    w.get(name)
        .with_context(|| format!("missing tensor {name}"))
}

/// x (b, t, in) times a torch Linear weight (out, in).
fn linear(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let (b, t, i) = x.dims3()?;
    let o = weight.dim(0)?;
    Ok(x.reshape((b * t, i))?
        .matmul(&weight.t()?)?
        .reshape((b, t, o))?)
}

/// x (b, t, in) times a GPT-2 Conv1D weight (in, out) plus bias.
fn conv1d(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (b, t, i) = x.dims3()?;
    let o = weight.dim(1)?;
    Ok(x.reshape((b * t, i))?
        .matmul(weight)?
        .broadcast_add(bias)?
        .reshape((b, t, o))?)
}

fn causal_mask(t: usize, dev: &Device) -> Result<Tensor> {
    let m: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { -1e9 } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(m, (t, t), dev)?)
}

/// RoPE tables (t, head_dim/2) in the HF "rotate_half" convention.
fn rope_tables(t: usize, hd: usize, theta: f64, dev: &Device) -> Result<(Tensor, Tensor)> {
    let half = hd / 2;
    let mut cos = Vec::with_capacity(t * half);
    let mut sin = Vec::with_capacity(t * half);
    for p in 0..t {
        for j in 0..half {
            let inv = 1.0 / theta.powf(2.0 * j as f64 / hd as f64);
            let a = p as f64 * inv;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    Ok((
        Tensor::from_vec(cos, (t, half), dev)?,
        Tensor::from_vec(sin, (t, half), dev)?,
    ))
}

/// Scaled dot-product causal attention over (b, heads, t, hd) tensors.
fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let hd = q.dim(D::Minus1)?;
    let att = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?.broadcast_add(mask)?;
    let att = softmax(&att, D::Minus1)?;
    Ok(att.matmul(v)?)
}

fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, h) = x.dims3()?;
    Ok(x.reshape((b, t, heads, h / heads))?
        .transpose(1, 2)?
        .contiguous()?)
}

fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (b, nh, t, hd) = x.dims4()?;
    Ok(x.transpose(1, 2)?.contiguous()?.reshape((b, t, nh * hd))?)
}

/// Logits (b, t, vocab) for token ids (b, t).
pub fn forward(cfg: &ModelConfig, w: &Weights, ids: &Tensor) -> Result<Tensor> {
    match cfg.arch {
        Arch::Llama => forward_llama(cfg, w, ids),
        Arch::Gpt2 => forward_gpt2(cfg, w, ids),
    }
}

fn forward_llama(cfg: &ModelConfig, w: &Weights, ids: &Tensor) -> Result<Tensor> {
    let dev = ids.device();
    let (b, t) = ids.dims2()?;
    let (h, nh, eps) = (cfg.hidden, cfg.heads, cfg.eps as f32);
    let mut x = get(w, "model.embed_tokens.weight")?
        .index_select(&ids.flatten_all()?, 0)?
        .reshape((b, t, h))?;
    let (cos, sin) = rope_tables(t, cfg.head_dim(), cfg.rope_theta, dev)?;
    let mask = causal_mask(t, dev)?;
    for l in 0..cfg.layers {
        let p = format!("model.layers.{l}.");
        let g = |n: &str| get(w, &format!("{p}{n}"));
        let hn = rms_norm_slow(&x, g("input_layernorm.weight")?, eps)?;
        let q = rope_slow(
            &split_heads(&linear(&hn, g("self_attn.q_proj.weight")?)?, nh)?,
            &cos,
            &sin,
        )?;
        let k = rope_slow(
            &split_heads(&linear(&hn, g("self_attn.k_proj.weight")?)?, nh)?,
            &cos,
            &sin,
        )?;
        let v = split_heads(&linear(&hn, g("self_attn.v_proj.weight")?)?, nh)?;
        let y = merge_heads(&attention(&q, &k, &v, &mask)?)?;
        x = (x + linear(&y, g("self_attn.o_proj.weight")?)?)?;
        let hn = rms_norm_slow(&x, g("post_attention_layernorm.weight")?, eps)?;
        let gate = linear(&hn, g("mlp.gate_proj.weight")?)?.silu()?;
        let up = linear(&hn, g("mlp.up_proj.weight")?)?;
        x = (x + linear(&(gate * up)?, g("mlp.down_proj.weight")?)?)?;
    }
    let x = rms_norm_slow(&x, get(w, "model.norm.weight")?, eps)?;
    linear(&x, get(w, "lm_head.weight")?)
}

fn forward_gpt2(cfg: &ModelConfig, w: &Weights, ids: &Tensor) -> Result<Tensor> {
    let dev = ids.device();
    let (b, t) = ids.dims2()?;
    let (h, nh, eps) = (cfg.hidden, cfg.heads, cfg.eps as f32);
    if t > cfg.max_positions {
        bail!("sequence length {t} > n_positions {}", cfg.max_positions);
    }
    let wte = get(w, "transformer.wte.weight")?;
    let pos = Tensor::arange(0u32, t as u32, dev)?;
    let mut x = wte
        .index_select(&ids.flatten_all()?, 0)?
        .reshape((b, t, h))?
        .broadcast_add(&get(w, "transformer.wpe.weight")?.index_select(&pos, 0)?)?;
    let mask = causal_mask(t, dev)?;
    for l in 0..cfg.layers {
        let p = format!("transformer.h.{l}.");
        let g = |n: &str| get(w, &format!("{p}{n}"));
        let hn = layer_norm_slow(&x, g("ln_1.weight")?, g("ln_1.bias")?, eps)?;
        let qkv = conv1d(&hn, g("attn.c_attn.weight")?, g("attn.c_attn.bias")?)?;
        let q = split_heads(&qkv.narrow(2, 0, h)?, nh)?;
        let k = split_heads(&qkv.narrow(2, h, h)?, nh)?;
        let v = split_heads(&qkv.narrow(2, 2 * h, h)?, nh)?;
        let y = merge_heads(&attention(&q, &k, &v, &mask)?)?;
        x = (x + conv1d(&y, g("attn.c_proj.weight")?, g("attn.c_proj.bias")?)?)?;
        let hn = layer_norm_slow(&x, g("ln_2.weight")?, g("ln_2.bias")?, eps)?;
        let m = conv1d(&hn, g("mlp.c_fc.weight")?, g("mlp.c_fc.bias")?)?.gelu()?;
        x = (x + conv1d(&m, g("mlp.c_proj.weight")?, g("mlp.c_proj.bias")?)?)?;
    }
    let x = layer_norm_slow(
        &x,
        get(w, "transformer.ln_f.weight")?,
        get(w, "transformer.ln_f.bias")?,
        eps,
    )?;
    // Tied head: logits = x · wteᵀ.
    linear(&x, wte)
}

/// Mean next-token cross-entropy of `logits` (b, t, V) against `targets` (b, t).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (b, t, v) = logits.dims3()?;
    Ok(candle_nn::loss::cross_entropy(
        &logits.reshape((b * t, v))?,
        &targets.reshape(b * t)?,
    )?)
}

/// Distillation loss: KL(teacher_T ‖ student_T) · T², averaged over positions,
/// on temperature-scaled log-softmax (Hinton et al.).
pub fn distill_kl(student: &Tensor, teacher: &Tensor, temperature: f64) -> Result<Tensor> {
    let (b, t, v) = student.dims3()?;
    let s = (student.reshape((b * t, v))? / temperature)?;
    let te = (teacher.detach().reshape((b * t, v))? / temperature)?;
    let log_ps = candle_nn::ops::log_softmax(&s, D::Minus1)?;
    let log_pt = candle_nn::ops::log_softmax(&te, D::Minus1)?;
    let pt = log_pt.exp()?;
    let kl = (pt * (log_pt - log_ps)?)?.sum(D::Minus1)?.mean_all()?;
    Ok((kl * (temperature * temperature))?)
}
