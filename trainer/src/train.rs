//! One training run: build or derive a model, train it with AdamW on
//! next-token cross-entropy (or distillation KL), write the snapshot and a
//! record for the zoo manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, Var};
use candle_nn::ops::rms_norm_slow;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::checkpoint::{load_snapshot, write_snapshot, Card};
use crate::data::{self, Corpus};
use crate::model::{self, Arch, ModelConfig, Weights};
use crate::rng::Rng;
use crate::tok;

/// Everything that defines a run (the CLI fills it).
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub family: String,
    pub mechanism: String,
    pub description: String,
    /// Hub-style ids of the parents are `<hub_prefix>/<parent name>`.
    pub hub_prefix: String,
    pub relation: Option<String>,
    /// Models this one is a look-alike of but NOT derived from (traps).
    pub independent_of: Vec<String>,

    // Where the model comes from.
    pub init: Option<PathBuf>,
    pub teacher: Option<PathBuf>,
    pub temperature: f64,
    pub drop_layers: Vec<usize>,
    pub prune_mlp: Option<usize>,
    /// Keep this many residual-stream channels (`hidden_size`), Llama only.
    pub prune_hidden: Option<usize>,
    /// Widen the residual stream to this many channels (Net2WiderNet), Llama only.
    pub grow_hidden: Option<usize>,
    /// Depth up-scaling: new layer `i` is a copy of the parent's layer
    /// `stack_layers[i]` (applied before the other derivations).
    pub stack_layers: Option<Vec<usize>>,

    // Fresh architecture (from scratch / distillation student).
    pub arch: Arch,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: Option<usize>,
    pub max_positions: usize,

    // Tokenizer: a file, or trained here, or the parent's extended here.
    pub tokenizer: Option<PathBuf>,
    pub train_tokenizer_on: Vec<PathBuf>,
    pub tokenizer_vocab: usize,
    pub extend_tokenizer_on: Vec<PathBuf>,
    pub extend_tokens: usize,

    // Optimisation.
    pub data: Vec<PathBuf>,
    pub seed: u64,
    pub steps: usize,
    pub batch: usize,
    pub seq: usize,
    pub lr: f64,
    pub warmup: usize,
    pub weight_decay: f64,
    pub clip: f64,
    pub log_every: usize,

    pub out: PathBuf,
    pub record_dir: Option<PathBuf>,
    pub command: String,
}

/// What a run reports (the zoo manifest is made of these).
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub name: String,
    pub family: String,
    pub parents: Option<Vec<String>>,
    pub mechanism: String,
    /// For traps: the models it resembles but is not derived from.
    pub independent_of: Option<Vec<String>>,
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub intermediate_size: usize,
    pub num_params: usize,
    pub seed: u64,
    pub steps: usize,
    pub batch: usize,
    pub seq_len: usize,
    pub lr: f64,
    pub objective: String,
    pub final_loss: f64,
    pub eval_cross_entropy: f64,
    pub unigram_entropy: f64,
    pub data: Vec<String>,
    pub command: String,
    pub train_seconds: f64,
}

fn parent_name(dir: &Path) -> String {
    dir.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Resolve the run's tokenizer; returns it, its JSON bytes and a description.
fn resolve_tokenizer(spec: &Spec) -> Result<(Tokenizer, Vec<u8>, String)> {
    let base_path = spec
        .tokenizer
        .clone()
        .or_else(|| spec.init.as_ref().map(|d| d.join("tokenizer.json")))
        .or_else(|| spec.teacher.as_ref().map(|d| d.join("tokenizer.json")));
    if !spec.train_tokenizer_on.is_empty() {
        if base_path.is_some() && spec.tokenizer.is_some() {
            bail!("--tokenizer and --train-tokenizer-on are exclusive");
        }
        let t0 = Instant::now();
        let tk = tok::train_bpe(&spec.train_tokenizer_on, spec.tokenizer_vocab)?;
        let files: Vec<_> = spec
            .train_tokenizer_on
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "[{}] trained BPE tokenizer ({} tokens) in {:.1}s",
            spec.name,
            tk.get_vocab_size(true),
            t0.elapsed().as_secs_f64()
        );
        let json = tok::to_json(&tk)?.into_bytes();
        return Ok((
            tk,
            json,
            format!(
                "own byte-level BPE, {} tokens, trained on {}",
                spec.tokenizer_vocab,
                files.join(", ")
            ),
        ));
    }
    let path = base_path
        .context("no tokenizer: pass --tokenizer, --train-tokenizer-on, --init or --teacher")?;
    let base = tok::load(&path)?;
    if !spec.extend_tokenizer_on.is_empty() {
        let tk = tok::extend(&base, &spec.extend_tokenizer_on, spec.extend_tokens)?;
        let files: Vec<_> = spec
            .extend_tokenizer_on
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let json = tok::to_json(&tk)?.into_bytes();
        return Ok((
            tk,
            json,
            format!(
                "{} extended by {} merges learned on {}",
                path.display(),
                spec.extend_tokens,
                files.join(", ")
            ),
        ));
    }
    let json = std::fs::read(&path)?;
    Ok((base, json, path.display().to_string()))
}

/// Rows for the new token ids: the mean of the parent rows of the tokens each
/// new token is merged from.
fn extend_rows(
    m: &Tensor,
    new_vocab: usize,
    pieces: &std::collections::HashMap<u32, Vec<u32>>,
) -> Result<Tensor> {
    let (old, h) = m.dims2()?;
    let rows: Vec<Vec<f32>> = m.to_vec2()?;
    let mut out: Vec<f32> = rows.iter().flatten().copied().collect();
    for id in old..new_vocab {
        let p = pieces
            .get(&(id as u32))
            .with_context(|| format!("new id {id} has no pieces"))?;
        let mut acc = vec![0f32; h];
        for &pid in p {
            for (a, x) in acc.iter_mut().zip(&rows[pid as usize]) {
                *a += x;
            }
        }
        out.extend(acc.iter().map(|a| a / p.len() as f32));
    }
    Ok(Tensor::from_vec(out, (new_vocab, h), m.device())?)
}

/// Remove layers `drop` and renumber the rest.
fn drop_layers(cfg: &mut ModelConfig, w: &mut Weights, drop: &[usize]) -> Result<()> {
    let mut keep = Vec::new();
    for l in 0..cfg.layers {
        if !drop.contains(&l) {
            keep.push(l);
        }
    }
    if keep.len() == cfg.layers || keep.is_empty() {
        bail!(
            "--drop-layers {drop:?} must remove some but not all of {} layers",
            cfg.layers
        );
    }
    let mut out = Weights::new();
    for (name, t) in std::mem::take(w) {
        let mut placed = false;
        for (new_l, &old_l) in keep.iter().enumerate() {
            let p = cfg.layer_prefix(old_l);
            if let Some(rest) = name.strip_prefix(&p) {
                out.insert(format!("{}{rest}", cfg.layer_prefix(new_l)), t.clone());
                placed = true;
            }
        }
        let in_dropped = drop.iter().any(|&l| name.starts_with(&cfg.layer_prefix(l)));
        if !placed && !in_dropped {
            out.insert(name, t);
        }
    }
    cfg.layers = keep.len();
    *w = out;
    Ok(())
}

/// Keep the `k` MLP neurons of each layer with the largest
/// ‖gate_j‖·‖up_j‖·‖down_:,j‖ (Llama only), in their original order.
fn prune_mlp(cfg: &mut ModelConfig, w: &mut Weights, k: usize) -> Result<()> {
    if cfg.arch != Arch::Llama {
        bail!("--prune-mlp is implemented for llama only");
    }
    if k >= cfg.intermediate {
        bail!(
            "--prune-mlp {k} must be below intermediate_size {}",
            cfg.intermediate
        );
    }
    for l in 0..cfg.layers {
        let p = cfg.layer_prefix(l);
        let gate: Vec<Vec<f32>> = w[&format!("{p}mlp.gate_proj.weight")].to_vec2()?;
        let up: Vec<Vec<f32>> = w[&format!("{p}mlp.up_proj.weight")].to_vec2()?;
        let down: Vec<Vec<f32>> = w[&format!("{p}mlp.down_proj.weight")].to_vec2()?;
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let mut score: Vec<(f32, usize)> = (0..cfg.intermediate)
            .map(|j| {
                let dcol: Vec<f32> = down.iter().map(|r| r[j]).collect();
                (norm(&gate[j]) * norm(&up[j]) * norm(&dcol), j)
            })
            .collect();
        score.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut keep: Vec<u32> = score[..k].iter().map(|s| s.1 as u32).collect();
        keep.sort_unstable();
        let idx = Tensor::new(keep.as_slice(), &Device::Cpu)?;
        for n in ["mlp.gate_proj.weight", "mlp.up_proj.weight"] {
            let key = format!("{p}{n}");
            let t = w[&key].index_select(&idx, 0)?;
            w.insert(key, t);
        }
        let key = format!("{p}mlp.down_proj.weight");
        let t = w[&key].index_select(&idx, 1)?.contiguous()?;
        w.insert(key, t);
    }
    cfg.intermediate = k;
    Ok(())
}

/// The residual stream of a Llama for every vocabulary token fed alone (a
/// one-token sequence), as it enters each RMSNorm: `2·layers + 1` tensors of
/// shape (vocab, hidden), in forward order, the last one entering model.norm.
/// At position 0 RoPE is the identity and attention has a single key, so the
/// attention output is o_proj·v_proj·norm(x): the result depends on the weights
/// alone (no data).
pub fn one_token_residuals(cfg: &ModelConfig, w: &Weights) -> Result<Vec<Tensor>> {
    if cfg.arch != Arch::Llama {
        bail!("one_token_residuals is implemented for llama only");
    }
    let get = |n: &str| w.get(n).with_context(|| format!("missing tensor {n}"));
    let lin = |x: &Tensor, n: &str| -> Result<Tensor> { Ok(x.matmul(&get(n)?.t()?)?) };
    let eps = cfg.eps as f32;
    let mut x = get("model.embed_tokens.weight")?.clone();
    let mut out = Vec::with_capacity(2 * cfg.layers + 1);
    for l in 0..cfg.layers {
        let p = cfg.layer_prefix(l);
        out.push(x.clone());
        let hn = rms_norm_slow(&x, get(&format!("{p}input_layernorm.weight"))?, eps)?;
        let v = lin(&hn, &format!("{p}self_attn.v_proj.weight"))?;
        x = (x + lin(&v, &format!("{p}self_attn.o_proj.weight"))?)?;
        out.push(x.clone());
        let hn = rms_norm_slow(
            &x,
            get(&format!("{p}post_attention_layernorm.weight"))?,
            eps,
        )?;
        let gate = lin(&hn, &format!("{p}mlp.gate_proj.weight"))?.silu()?;
        let up = lin(&hn, &format!("{p}mlp.up_proj.weight"))?;
        x = (x + lin(&(gate * up)?, &format!("{p}mlp.down_proj.weight"))?)?;
    }
    out.push(x);
    Ok(out)
}

/// Importance of each residual-stream channel `c` of a Llama, from the weights
/// alone (no calibration data): the sum over the `2·layers + 1` RMSNorm inputs
/// of the RMS over the vocabulary of channel `c` of [`one_token_residuals`].
/// Its first term is the RMS of embedding column `c`; the later ones add what
/// attention and the MLPs write into `c`. The RMSNorm gains are deliberately
/// not a factor: on L-base, embedding RMS × mean |gain| chose channels no
/// better than random and mean |gain| alone worse than random (see
/// trainer/README.md, L-widthpruned).
pub fn hidden_importance(cfg: &ModelConfig, w: &Weights) -> Result<Vec<f32>> {
    let mut score = vec![0f32; cfg.hidden];
    for x in one_token_residuals(cfg, w)? {
        let rms: Vec<f32> = x.sqr()?.mean(0)?.sqrt()?.to_vec1()?;
        for (s, r) in score.iter_mut().zip(rms) {
            *s += r;
        }
    }
    Ok(score)
}

/// Width pruning of the residual stream (Minitron / Sheared-LLaMA style, Llama
/// only): keep the `k` of `hidden_size` channels with the largest
/// [`hidden_importance`], in their original order, and slice every tensor that
/// reads or writes the stream: embed_tokens and lm_head columns, every RMSNorm
/// weight, the input columns of q/k/v/gate/up and the output rows of o_proj and
/// down_proj. The heads are kept: `head_dim` becomes explicit in config.json
/// (so q/k/v are `heads·head_dim × k`), as HF Llama allows. Returns the
/// dropped channel indices.
fn prune_hidden(cfg: &mut ModelConfig, w: &mut Weights, k: usize) -> Result<Vec<usize>> {
    if cfg.arch != Arch::Llama {
        bail!("--prune-hidden is implemented for llama only");
    }
    if k == 0 || k >= cfg.hidden {
        bail!(
            "--prune-hidden {k} must be in 1..{} (hidden_size)",
            cfg.hidden
        );
    }
    let score = hidden_importance(cfg, w)?;
    let mut order: Vec<usize> = (0..cfg.hidden).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    let mut keep: Vec<u32> = order[..k].iter().map(|&c| c as u32).collect();
    keep.sort_unstable();
    let mut dropped: Vec<usize> = order[k..].to_vec();
    dropped.sort_unstable();
    slice_hidden(cfg, w, &keep)?;
    Ok(dropped)
}

/// Keep residual-stream channels `keep` (ascending) of a Llama: every tensor
/// that reads or writes the stream is sliced, `head_dim` is made explicit.
pub fn slice_hidden(cfg: &mut ModelConfig, w: &mut Weights, keep: &[u32]) -> Result<()> {
    if cfg.arch != Arch::Llama {
        bail!("residual-stream pruning is implemented for llama only");
    }
    if keep.is_empty()
        || keep.windows(2).any(|p| p[0] >= p[1])
        || keep.iter().any(|&c| c as usize >= cfg.hidden)
    {
        bail!(
            "channels to keep must be ascending and below hidden_size {}",
            cfg.hidden
        );
    }
    let idx = Tensor::new(keep, &Device::Cpu)?;
    let mut slice = |name: &str, dim: usize| -> Result<()> {
        let t = w
            .get(name)
            .with_context(|| format!("missing tensor {name}"))?
            .index_select(&idx, dim)?
            .contiguous()?;
        w.insert(name.to_string(), t);
        Ok(())
    };
    slice("model.embed_tokens.weight", 1)?;
    slice("lm_head.weight", 1)?;
    slice("model.norm.weight", 0)?;
    for l in 0..cfg.layers {
        let p = cfg.layer_prefix(l);
        for n in ["input_layernorm", "post_attention_layernorm"] {
            slice(&format!("{p}{n}.weight"), 0)?;
        }
        for n in [
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
        ] {
            slice(&format!("{p}{n}.weight"), 1)?;
        }
        for n in ["self_attn.o_proj", "mlp.down_proj"] {
            slice(&format!("{p}{n}.weight"), 0)?;
        }
    }
    cfg.head_dim = Some(cfg.head_dim());
    cfg.hidden = keep.len();
    Ok(())
}

/// Relative size of the symmetry-breaking noise added to the new channels of
/// [`grow_hidden`]: this fraction of each parent tensor's standard deviation.
pub const GROW_NOISE: f64 = 0.01;

/// Widen `t` along `dim` from `h = map.len() - new` to `map.len()` entries:
/// entry `c` is the parent's entry `map[c]` (`map[c] == c` below `h`), divided
/// by `split[map[c]]` when `split` is given (Net2WiderNet's rule for tensors
/// that read a duplicated channel), plus N(0, (noise·std(t))²) on the new
/// entries only.
fn widen(
    t: &Tensor,
    dim: usize,
    map: &[usize],
    split: Option<&[usize]>,
    noise: f64,
    rng: &mut Rng,
) -> Result<Tensor> {
    let h = t.dim(dim)?;
    let n = map.len();
    let idx: Vec<u32> = map.iter().map(|&c| c as u32).collect();
    let mut out = t.index_select(&Tensor::new(idx.as_slice(), t.device())?, dim)?;
    let mut bshape = vec![1usize; t.rank()];
    bshape[dim] = n;
    if let Some(count) = split {
        let scale: Vec<f32> = map.iter().map(|&c| 1.0 / count[c] as f32).collect();
        out = out.broadcast_mul(&Tensor::from_vec(scale, bshape.as_slice(), t.device())?)?;
    }
    if noise > 0.0 && n > h {
        let std = t.flatten_all()?.var(0)?.sqrt()?.to_scalar::<f32>()? as f64;
        let mut nshape = t.dims().to_vec();
        nshape[dim] = n - h;
        let count: usize = nshape.iter().product();
        let fresh = Tensor::from_vec(rng.normal_vec(count, noise * std), nshape, t.device())?;
        let mut zshape = t.dims().to_vec();
        zshape[dim] = h;
        let zeros = Tensor::zeros(zshape, t.dtype(), t.device())?;
        out = (out + Tensor::cat(&[&zeros, &fresh], dim)?)?;
    }
    Ok(out.contiguous()?)
}

/// Scaled transfer of a Llama into a wider residual stream (bert2BERT /
/// Net2WiderNet; phi-2 was grown from phi-1.5 this way): `n` channels, the
/// parent's `h` kept at positions `0..h`, each new channel `h..n` a copy of
/// parent channel `map[c]`, drawn uniformly (with replacement) by `rng`.
/// Tensors that write the stream (o_proj and down_proj rows, embed_tokens
/// columns) copy the source; tensors that read it (q/k/v/gate/up and lm_head
/// columns) copy it and divide the source and all its copies by the number of
/// them (Net2WiderNet: halved for a single copy), so a reader sees the same sum;
/// the RMSNorm gains are copied. The copies (only) get noise of `noise` × the
/// parent tensor's std to break the symmetry. RMSNorm over duplicated channels
/// changes each token's RMS, so the function is preserved only up to that
/// per-token scale; training heals it. Heads keep their width (`head_dim`
/// becomes explicit). Returns `map`.
pub fn grow_hidden(
    cfg: &mut ModelConfig,
    w: &mut Weights,
    n: usize,
    noise: f64,
    rng: &mut Rng,
) -> Result<Vec<usize>> {
    if cfg.arch != Arch::Llama {
        bail!("--grow-hidden is implemented for llama only");
    }
    let h = cfg.hidden;
    if n <= h {
        bail!("--grow-hidden {n} must be larger than hidden_size {h}");
    }
    let map: Vec<usize> = (0..n)
        .map(|c| if c < h { c } else { rng.below(h) })
        .collect();
    let mut count = vec![0usize; h];
    for &c in &map {
        count[c] += 1;
    }
    let mut names = vec![
        ("model.embed_tokens.weight".to_string(), 1, false),
        ("lm_head.weight".to_string(), 1, true),
        ("model.norm.weight".to_string(), 0, false),
    ];
    for l in 0..cfg.layers {
        let p = cfg.layer_prefix(l);
        for s in ["input_layernorm", "post_attention_layernorm"] {
            names.push((format!("{p}{s}.weight"), 0, false));
        }
        for s in [
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
        ] {
            names.push((format!("{p}{s}.weight"), 1, true));
        }
        for s in ["self_attn.o_proj", "mlp.down_proj"] {
            names.push((format!("{p}{s}.weight"), 0, false));
        }
    }
    // Every tensor is checked before any is changed.
    for (name, dim, _) in &names {
        let t = w
            .get(name)
            .with_context(|| format!("missing tensor {name}"))?;
        if t.dim(*dim)? != h {
            bail!(
                "{name}: dimension {dim} is {}, not hidden_size {h}",
                t.dim(*dim)?
            );
        }
    }
    for (name, dim, reads) in names {
        let split = reads.then_some(count.as_slice());
        let t = widen(&w[&name], dim, &map, split, noise, rng)?;
        w.insert(name, t);
    }
    cfg.head_dim = Some(cfg.head_dim());
    cfg.hidden = n;
    Ok(map)
}

/// Parse a `--stack-layers` spec: comma-separated layer indices (`0,1,2,1,2,3`).
pub fn parse_layer_spec(s: &str) -> Result<Vec<usize>> {
    if s.trim().is_empty() {
        bail!("--stack-layers: empty layer list");
    }
    s.split(',')
        .map(|x| {
            x.trim().parse::<usize>().with_context(|| {
                format!("--stack-layers {s:?}: {:?} is not a layer index", x.trim())
            })
        })
        .collect()
}

/// Depth up-scaling (SOLAR-10.7B) / mergekit passthrough: new layer `i` is a
/// copy of the parent's layer `spec[i]`; every non-layer tensor is kept.
pub fn stack_layers(cfg: &mut ModelConfig, w: &mut Weights, spec: &[usize]) -> Result<()> {
    if spec.is_empty() {
        bail!("--stack-layers: empty layer list");
    }
    if let Some(&bad) = spec.iter().find(|&&l| l >= cfg.layers) {
        bail!(
            "--stack-layers: layer {bad} does not exist (the parent has {} layers, 0..{})",
            cfg.layers,
            cfg.layers
        );
    }
    let old = std::mem::take(w);
    let prefixes: Vec<String> = (0..cfg.layers).map(|l| cfg.layer_prefix(l)).collect();
    let mut by_layer: Vec<Vec<(String, Tensor)>> = vec![Vec::new(); cfg.layers];
    for (name, t) in old {
        match prefixes.iter().position(|p| name.starts_with(p)) {
            Some(l) => by_layer[l].push((name[prefixes[l].len()..].to_string(), t)),
            None => {
                w.insert(name, t);
            }
        }
    }
    for (i, &src) in spec.iter().enumerate() {
        let p = cfg.layer_prefix(i);
        for (rest, t) in &by_layer[src] {
            w.insert(format!("{p}{rest}"), t.copy()?);
        }
    }
    cfg.layers = spec.len();
    Ok(())
}

fn fresh_config(spec: &Spec, vocab: usize, eos: u32) -> ModelConfig {
    let intermediate = spec.intermediate.unwrap_or(match spec.arch {
        Arch::Llama => (8 * spec.hidden / 3).div_ceil(16) * 16,
        Arch::Gpt2 => 4 * spec.hidden,
    });
    ModelConfig {
        arch: spec.arch,
        vocab_size: vocab,
        hidden: spec.hidden,
        layers: spec.layers,
        heads: spec.heads,
        head_dim: None,
        intermediate,
        max_positions: spec.max_positions,
        eps: 1e-5,
        rope_theta: if spec.arch == Arch::Llama {
            10000.0
        } else {
            0.0
        },
        bos_token_id: eos,
        eos_token_id: eos,
    }
}

fn lr_at(spec: &Spec, step: usize) -> f64 {
    if step < spec.warmup {
        return spec.lr * (step + 1) as f64 / spec.warmup as f64;
    }
    // Cosine decay to 10% of the peak.
    let t = (step - spec.warmup) as f64 / (spec.steps - spec.warmup).max(1) as f64;
    spec.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

/// Mean cross-entropy of `w` on fixed eval windows (the same windows for every
/// model that uses the same corpus and tokenizer).
pub fn eval_ce(
    cfg: &ModelConfig,
    w: &Weights,
    corpus: &Corpus,
    batch: usize,
    seq: usize,
    dev: &Device,
) -> Result<f64> {
    let mut rng = Rng::new(0, 0xE7A1);
    let n = 8;
    let mut total = 0.0;
    for _ in 0..n {
        let (x, y) = data::sample_batch(&corpus.eval, &mut rng, batch, seq, dev)?;
        let logits = model::forward(cfg, w, &x)?;
        total += model::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64;
    }
    Ok(total / n as f64)
}

/// Run `spec` end to end.
pub fn run(spec: &Spec) -> Result<Record> {
    let dev = Device::Cpu;
    let t0 = Instant::now();
    let (tk, tok_json, tok_desc) = resolve_tokenizer(spec)?;
    let vocab = tk.get_vocab_size(true);
    let eos = tok::eos_id(&tk)?;

    // The model to train.
    let mut parents = Vec::new();
    let (mut cfg, mut w) = if let Some(dir) = &spec.init {
        parents.push(parent_name(dir));
        let snap = load_snapshot(dir, &dev)?;
        (snap.config, snap.weights)
    } else {
        let cfg = fresh_config(spec, vocab, eos);
        let w = model::init_weights(&cfg, spec.seed, &dev)?;
        (cfg, w)
    };
    if spec.init.is_none() && (spec.grow_hidden.is_some() || spec.stack_layers.is_some()) {
        bail!("--grow-hidden and --stack-layers transform a parent: they need --init");
    }
    if spec.grow_hidden.is_some() && spec.prune_hidden.is_some() {
        bail!("--grow-hidden and --prune-hidden are exclusive");
    }
    if let Some(layers) = &spec.stack_layers {
        let from = cfg.layers;
        stack_layers(&mut cfg, &mut w, layers)?;
        eprintln!(
            "[{}] stacked {from} layers into {}: new layer i = old layer {layers:?}[i]",
            spec.name, cfg.layers
        );
    }
    if !spec.drop_layers.is_empty() {
        drop_layers(&mut cfg, &mut w, &spec.drop_layers)?;
    }
    if let Some(k) = spec.prune_mlp {
        prune_mlp(&mut cfg, &mut w, k)?;
    }
    if let Some(k) = spec.prune_hidden {
        let dropped = prune_hidden(&mut cfg, &mut w, k)?;
        eprintln!(
            "[{}] pruned the residual stream to {k} channels, dropped {dropped:?}",
            spec.name
        );
    }
    if let Some(n) = spec.grow_hidden {
        let from = cfg.hidden;
        let mut rng = Rng::new(spec.seed, 0x6_2077);
        let map = grow_hidden(&mut cfg, &mut w, n, GROW_NOISE, &mut rng)?;
        eprintln!(
            "[{}] grew the residual stream from {from} to {n} channels, new channel {from}+i copies {:?}[i]",
            spec.name,
            &map[from..]
        );
    }
    if vocab != cfg.vocab_size {
        let dir = spec
            .init
            .as_ref()
            .context("tokenizer size differs from the model's")?;
        if vocab < cfg.vocab_size {
            bail!(
                "tokenizer has {vocab} tokens, parent model {}",
                cfg.vocab_size
            );
        }
        let parent_tk = tok::load(&dir.join("tokenizer.json"))?;
        let pieces = tok::new_token_pieces(&parent_tk, &tk)?;
        let (emb, head) = cfg.embedding_names();
        for name in std::iter::once(emb).chain(head) {
            let t = extend_rows(&w[name], vocab, &pieces)?;
            w.insert(name.to_string(), t);
        }
        cfg.vocab_size = vocab;
    }
    model::check_weights(&cfg, &w)?;

    let teacher = match &spec.teacher {
        Some(dir) => {
            parents.push(parent_name(dir));
            let snap = load_snapshot(dir, &dev)?;
            if snap.config.vocab_size != vocab {
                bail!(
                    "teacher vocab {} != student tokenizer {vocab}",
                    snap.config.vocab_size
                );
            }
            Some(snap)
        }
        None => None,
    };

    let corpus = data::load(&tk, &spec.data, eos)?;
    let h_uni = data::unigram_entropy(&corpus.train, vocab);
    eprintln!(
        "[{}] {} params={} train_tokens={} eval_tokens={} unigram_entropy={:.3} nats (tokenize {:.1}s)",
        spec.name,
        cfg.to_hf_json()["model_type"],
        cfg.num_params(),
        corpus.train.len(),
        corpus.eval.len(),
        h_uni,
        t0.elapsed().as_secs_f64()
    );

    let structural = spec.init.is_some()
        && (spec.stack_layers.is_some()
            || !spec.drop_layers.is_empty()
            || spec.prune_mlp.is_some()
            || spec.prune_hidden.is_some()
            || spec.grow_hidden.is_some());
    if structural {
        // Log only (records and cards are unchanged): how far the structural
        // change alone moved the parent, before any training.
        let ce = eval_ce(&cfg, &w, &corpus, spec.batch, spec.seq, &dev)?;
        eprintln!(
            "[{}] eval CE right after the structural change, before training: {ce:.4}",
            spec.name
        );
    }

    // Optimiser: AdamW, decay on matrices only.
    let vars: BTreeMap<String, Var> = model::to_vars(&w)?;
    let (decay, no_decay): (Vec<Var>, Vec<Var>) = vars
        .values()
        .cloned()
        .partition(|v| v.as_tensor().rank() >= 2);
    let params = |wd: f64| ParamsAdamW {
        lr: spec.lr,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: wd,
    };
    let mut opt_decay = AdamW::new(decay, params(spec.weight_decay))?;
    let mut opt_plain = AdamW::new(no_decay, params(0.0))?;

    let mut rng = Rng::new(spec.seed, 0xDA7A);
    let t_train = Instant::now();
    let mut recent: Vec<f64> = Vec::new();
    for step in 0..spec.steps {
        let lr = lr_at(spec, step);
        opt_decay.set_learning_rate(lr);
        opt_plain.set_learning_rate(lr);
        let (x, y) = data::sample_batch(&corpus.train, &mut rng, spec.batch, spec.seq, &dev)?;
        let weights = model::var_weights(&vars);
        let logits = model::forward(&cfg, &weights, &x)?;
        let loss = match &teacher {
            Some(t) => {
                let tl = model::forward(&t.config, &t.weights, &x)?;
                model::distill_kl(&logits, &tl, spec.temperature)?
            }
            None => model::cross_entropy(&logits, &y)?,
        };
        let lv = loss.to_scalar::<f32>()? as f64;
        if !lv.is_finite() {
            bail!("[{}] loss is {lv} at step {step}", spec.name);
        }
        let mut grads = loss.backward()?;
        // Global-norm gradient clipping.
        let mut sq = 0f64;
        for v in vars.values() {
            if let Some(g) = grads.get(v.as_tensor()) {
                sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        let norm = sq.sqrt();
        if norm > spec.clip {
            let s = spec.clip / norm;
            for v in vars.values() {
                if let Some(g) = grads.get(v.as_tensor()) {
                    let g = (g * s)?;
                    grads.insert(v.as_tensor(), g);
                }
            }
        }
        opt_decay.step(&grads)?;
        opt_plain.step(&grads)?;
        recent.push(lv);
        if recent.len() > 50 {
            recent.remove(0);
        }
        if spec.log_every > 0 && (step % spec.log_every == 0 || step + 1 == spec.steps) {
            eprintln!(
                "[{}] step {step:>5} loss {lv:.4} lr {lr:.2e} |g| {norm:.2} ({:.2} steps/s)",
                spec.name,
                (step + 1) as f64 / t_train.elapsed().as_secs_f64()
            );
        }
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    let final_w: Weights = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    let final_loss = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
    let eval = eval_ce(&cfg, &final_w, &corpus, spec.batch, spec.seq, &dev)?;
    let objective = if teacher.is_some() {
        format!(
            "distillation KL(teacher‖student) at T={}, ×T²",
            spec.temperature
        )
    } else {
        "next-token cross-entropy".to_string()
    };
    eprintln!(
        "[{}] done in {train_seconds:.1}s: final {objective} {final_loss:.4}, eval CE {eval:.4}, unigram entropy {h_uni:.4}",
        spec.name
    );

    let data_names: Vec<String> = spec.data.iter().map(|p| p.display().to_string()).collect();
    let base_models: Vec<String> = parents
        .iter()
        .map(|p| format!("{}/{p}", spec.hub_prefix))
        .collect();
    let details = vec![
        ("family".to_string(), spec.family.clone()),
        ("mechanism".to_string(), spec.mechanism.clone()),
        (
            "architecture".to_string(),
            cfg.to_hf_json()["architectures"][0]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ),
        ("parameters".to_string(), cfg.num_params().to_string()),
        ("tokenizer".to_string(), tok_desc),
        ("data".to_string(), data_names.join(", ")),
        ("seed".to_string(), spec.seed.to_string()),
        (
            "steps × batch × seq".to_string(),
            format!("{} × {} × {}", spec.steps, spec.batch, spec.seq),
        ),
        (
            "optimizer".to_string(),
            format!(
                "AdamW, lr {} (warmup {}, cosine to 10%), wd {}, clip {}",
                spec.lr, spec.warmup, spec.weight_decay, spec.clip
            ),
        ),
        ("objective".to_string(), objective.clone()),
        (
            "final training loss (mean of last 50 steps)".to_string(),
            format!("{final_loss:.4}"),
        ),
        (
            "held-out cross-entropy (nats/token)".to_string(),
            format!("{eval:.4}"),
        ),
        (
            "unigram entropy of the training tokens".to_string(),
            format!("{h_uni:.4}"),
        ),
    ];
    let card = Card {
        name: &spec.name,
        base_models: &base_models,
        relation: spec.relation.as_deref(),
        description: &spec.description,
        command: &spec.command,
        details,
    };
    write_snapshot(&spec.out, &cfg, &final_w, &tok_json, &card)?;

    let record = Record {
        name: spec.name.clone(),
        family: spec.family.clone(),
        parents: if parents.is_empty() {
            None
        } else {
            Some(parents)
        },
        mechanism: spec.mechanism.clone(),
        independent_of: if spec.independent_of.is_empty() {
            None
        } else {
            Some(spec.independent_of.clone())
        },
        model_type: cfg.to_hf_json()["model_type"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        vocab_size: cfg.vocab_size,
        hidden_size: cfg.hidden,
        num_layers: cfg.layers,
        intermediate_size: cfg.intermediate,
        num_params: cfg.num_params(),
        seed: spec.seed,
        steps: spec.steps,
        batch: spec.batch,
        seq_len: spec.seq,
        lr: spec.lr,
        objective,
        final_loss: round4(final_loss),
        eval_cross_entropy: round4(eval),
        unigram_entropy: round4(h_uni),
        data: data_names,
        command: spec.command.clone(),
        train_seconds: (train_seconds * 10.0).round() / 10.0,
    };
    if let Some(dir) = &spec.record_dir {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{}.json", spec.name)),
            serde_json::to_string_pretty(&record)? + "\n",
        )?;
    }
    Ok(record)
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}
