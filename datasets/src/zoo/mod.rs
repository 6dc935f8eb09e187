//! The lineage zoo: real Hugging Face snapshots of mechanical derivations of the committed trained models and
//! of the real all-MiniLM-L6-v2, plus unrelated twins, and the labelled pairs that `provsearch eval` scores.
//!
//! Layout of a zoo root (every pair path is relative to it):
//! - `trained/` → a link to the committed trained zoo (`datasets/zoo/trained`);
//! - `real/minilm` → a link to the MiniLM snapshot fetched by `scripts/fetch-test-models.sh`;
//! - `gen/<name>/` → the generated models ([`recipes::recipes`]).
//!
//! Generation is deterministic (fixed seeds, the crate's own RNG) and incremental: a model whose directory holds
//! a `.zoo-recipe` stamp equal to its recipe is not rebuilt.

pub mod pairs;
pub mod recipes;

use crate::checkpoint::{Checkpoint, Storage, Tensor};
use crate::rng::Rng;
use crate::{derive, grow, synth, vocab_edit};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use recipes::{Base, Op, Recipe, MINILM};
use std::path::{Path, PathBuf};

/// Bump when a derivation's output changes, so cached zoos regenerate.
pub const GENERATOR_VERSION: u32 = 1;

/// Name of the stamp file in every generated model directory.
const STAMP: &str = ".zoo-recipe";

/// Where the zoo's inputs are.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The committed trained zoo (`datasets/zoo/trained`).
    pub trained: PathBuf,
    /// The real MiniLM snapshot, when fetched; without it the MiniLM recipes are skipped.
    pub minilm: Option<PathBuf>,
}

impl Sources {
    /// The defaults of a checkout: the trained zoo beside this crate, MiniLM under `$PROVSEARCH_TEST_MODELS` or
    /// `<repo>/.cache/test-models` if present.
    pub fn from_checkout() -> Sources {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let models = std::env::var_os("PROVSEARCH_TEST_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate_dir.join("../.cache/test-models"));
        let minilm = models.join("minilm");
        Sources {
            trained: crate_dir.join("zoo/trained"),
            minilm: minilm.join("model.safetensors").is_file().then_some(minilm),
        }
    }
}

/// What [`generate`] did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Models written.
    pub built: Vec<String>,
    /// Models already up to date.
    pub cached: Vec<String>,
    /// Models skipped because MiniLM is not available.
    pub skipped: Vec<String>,
}

fn stamp_of(recipe: &Recipe) -> String {
    format!("zoo generator v{GENERATOR_VERSION}\n{recipe:#?}\n")
}

fn link(target: &Path, at: &Path) -> Result<()> {
    let target = std::fs::canonicalize(target)
        .with_context(|| format!("{} does not exist", target.display()))?;
    if std::fs::read_link(at).is_ok_and(|t| t == target) {
        return Ok(());
    }
    if at.symlink_metadata().is_ok() {
        std::fs::remove_file(at)
            .with_context(|| format!("{} exists and is not a link", at.display()))?;
    }
    if let Some(parent) = at.parent() {
        std::fs::create_dir_all(parent)?;
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, at).with_context(|| format!("linking {}", at.display()))?;
    #[cfg(not(unix))]
    bail!("the zoo links its inputs with symlinks, which need a Unix system");
    Ok(())
}

/// Generate the zoo under `root` (idempotent). Models are built level by level in dependency order, the models
/// of a level in parallel.
pub fn generate(root: &Path, sources: &Sources) -> Result<Summary> {
    std::fs::create_dir_all(root.join("gen"))
        .with_context(|| format!("creating {}", root.display()))?;
    link(&sources.trained, &root.join("trained"))?;
    if let Some(m) = &sources.minilm {
        link(m, &root.join(MINILM))?;
    }
    let all = recipes::recipes();
    let mut summary = Summary::default();
    let mut done: Vec<String> = Vec::new();
    let mut todo: Vec<&Recipe> = Vec::new();
    for r in &all {
        if sources.minilm.is_none() && r.needs_minilm(&all) {
            summary.skipped.push(r.id.clone());
        } else {
            todo.push(r);
        }
    }
    while !todo.is_empty() {
        let ready = |r: &&Recipe| {
            r.base
                .sources()
                .iter()
                .all(|d| !d.starts_with("gen/") || done.contains(d))
        };
        let (level, rest): (Vec<&Recipe>, Vec<&Recipe>) = todo.iter().copied().partition(ready);
        if level.is_empty() {
            bail!(
                "recipes {:?} depend on models that are not generated",
                rest.iter().map(|r| &r.id).collect::<Vec<_>>()
            );
        }
        let results: Vec<(String, bool)> = level
            .par_iter()
            .map(|r| build_if_stale(root, r).map(|built| (r.id.clone(), built)))
            .collect::<Result<_>>()?;
        for (id, built) in results {
            if built {
                summary.built.push(id.clone());
            } else {
                summary.cached.push(id.clone());
            }
            done.push(id);
        }
        todo = rest;
    }
    Ok(summary)
}

fn build_if_stale(root: &Path, recipe: &Recipe) -> Result<bool> {
    let dir = root.join(&recipe.id);
    let stamp = stamp_of(recipe);
    if std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s == stamp) {
        return Ok(false);
    }
    let tmp = root.join(format!("{}.partial", recipe.id));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    build(root, recipe, &tmp).with_context(|| format!("generating {}", recipe.id))?;
    std::fs::write(tmp.join(STAMP), stamp)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&tmp, &dir)?;
    Ok(true)
}

fn build(root: &Path, recipe: &Recipe, dir: &Path) -> Result<()> {
    if recipe.ops == [Op::CopyFiles] {
        let Base::Model(src) = &recipe.base else {
            bail!("a copy needs a model to copy");
        };
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(root.join(src))? {
            let path = entry?.path();
            if let (true, Some(name)) = (path.is_file(), path.file_name()) {
                std::fs::copy(&path, dir.join(name))?;
            }
        }
        return Ok(());
    }
    let mut ckpt = match &recipe.base {
        Base::Model(src) => Checkpoint::read(&root.join(src))?,
        Base::Merge { a, b, t, slerp } => {
            let (ca, cb) = (
                Checkpoint::read(&root.join(a))?,
                Checkpoint::read(&root.join(b))?,
            );
            if *slerp {
                derive::slerp_merge(&ca, &cb, *t)
            } else {
                derive::linear_merge(&ca, &cb, *t)
            }
        }
        Base::Stack(slices) => {
            let ids = recipe.base.sources();
            let sources = read_all(root, &ids)?;
            let index = |id: &String| ids.iter().position(|s| s == id);
            let layers: Vec<(usize, usize)> = slices
                .iter()
                .flat_map(|(id, start, end)| (*start..*end).map(move |l| (id, l)))
                .filter_map(|(id, l)| index(id).map(|i| (i, l)))
                .collect();
            grow::stack_layers(&sources.iter().collect::<Vec<_>>(), &layers)?
        }
        Base::TaskMerge {
            base,
            models,
            method,
            density,
        } => {
            let base = Checkpoint::read(&root.join(base))?;
            let models = read_all(root, models)?;
            derive::task_merge(
                &base,
                &models.iter().collect::<Vec<_>>(),
                *method,
                *density,
                recipe.seed,
            )
        }
        Base::Synth {
            spec,
            tokenizer_from,
            vocab,
        } => {
            let mut c = synth::build(spec);
            if let Some(src) = tokenizer_from {
                borrow_tokenizer(&mut c, &root.join(src), *vocab, spec.seed)?;
            }
            c
        }
    };
    for op in &recipe.ops {
        apply(&mut ckpt, op, recipe.seed)?;
    }
    ckpt.files.insert(
        "README.md".into(),
        format!(
            "---\nlicense: apache-2.0\ntags: [provsearch-zoo]\n---\n# {}\n\nGenerated by the provsearch zoo \
             generator v{GENERATOR_VERSION}: {} ({}).\n",
            recipe.id, recipe.detail, recipe.category
        )
        .into_bytes(),
    );
    ckpt.write(dir, recipe.storage, recipe.shards)
}

fn apply(ckpt: &mut Checkpoint, op: &Op, seed: u64) -> Result<()> {
    match op {
        Op::CopyFiles => bail!("a copy cannot be combined with other operations"),
        Op::Int8 => derive::int8_per_channel(ckpt),
        Op::Int4(block) => derive::int4_block(ckpt, *block),
        Op::MagnitudePrune(f) => derive::magnitude_prune(ckpt, *f),
        Op::DropLayers(l) => derive::drop_layers(ckpt, l)?,
        Op::PruneVocab(keep) => {
            vocab_edit::prune_vocab(ckpt, *keep, seed)?;
        }
        Op::ExtendVocab(n) => {
            vocab_edit::extend_vocab(ckpt, *n, seed)?;
        }
        Op::Lora(targets, rank, rel) => derive::lora_merge(ckpt, targets, *rank, *rel, seed),
        Op::PermuteMlp => {
            derive::permute_mlp(ckpt, seed)?;
        }
        Op::PermuteResidual => {
            crate::residual::permute_residual(ckpt, seed)?;
        }
        Op::PruneWidth(keep) => {
            crate::residual::prune_width(ckpt, *keep)?;
        }
        Op::GrowWidth(width) => {
            crate::residual::grow_width(ckpt, *width, seed)?;
        }
        Op::UpcycleMoe(experts) => {
            grow::upcycle_moe(ckpt, *experts, 0.01, seed)?;
        }
        Op::Noise(relative) => derive::add_noise(ckpt, *relative, seed),
        Op::FuseProjections => {
            grow::fuse_projections(ckpt)?;
        }
        Op::RescaleNorms(s) => {
            derive::rescale_norms(ckpt, *s, seed)?;
        }
        Op::Rename(pairs) => {
            for (from, to) in *pairs {
                derive::rename(ckpt, from, to);
            }
        }
        Op::FreshInit => {
            // Trained-looking scale: each tensor keeps its own RMS, so only the values are new.
            let rms: Vec<f32> = ckpt.tensors.iter().map(|t| rms(&t.data)).collect();
            derive::fresh_init(ckpt, 1.0, seed);
            for (t, r) in ckpt.tensors.iter_mut().zip(rms) {
                if t.is_float() && t.shape.len() >= 2 {
                    t.data.iter_mut().for_each(|v| *v *= r);
                }
            }
        }
    }
    Ok(())
}

/// Read the zoo models `ids`, in order.
fn read_all(root: &Path, ids: &[String]) -> Result<Vec<Checkpoint>> {
    ids.iter()
        .map(|id| Checkpoint::read(&root.join(id)))
        .collect()
}

fn rms(v: &[f32]) -> f32 {
    (v.iter().map(|x| x * x).sum::<f32>() / v.len().max(1) as f32).sqrt()
}

/// Give a synthetic model another model's tokenizer files and an embedding (and lm_head) of as many fresh rows.
fn borrow_tokenizer(ckpt: &mut Checkpoint, src: &Path, vocab: usize, seed: u64) -> Result<()> {
    for name in [
        "tokenizer.json",
        "vocab.txt",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        ckpt.files.remove(name);
        let path = src.join(name);
        if path.is_file() {
            ckpt.files.insert(name.into(), std::fs::read(&path)?);
        }
    }
    let mut rng = Rng::new(seed ^ 0xE3B);
    let names = [
        "model.embed_tokens.weight",
        "lm_head.weight",
        "transformer.wte.weight",
        "embeddings.word_embeddings.weight",
    ];
    for t in ckpt
        .tensors
        .iter_mut()
        .filter(|t| names.contains(&t.name.as_str()))
    {
        let cols = t.shape[1];
        *t = Tensor::new(
            t.name.clone(),
            vec![vocab, cols],
            (0..vocab * cols)
                .map(|_| 0.02 * rng.normal() as f32)
                .collect(),
        );
    }
    let config = ckpt
        .files
        .get("config.json")
        .context("synthetic model without config")?;
    let mut config: serde_json::Value = serde_json::from_slice(config)?;
    config["vocab_size"] = vocab.into();
    ckpt.files
        .insert("config.json".into(), serde_json::to_vec_pretty(&config)?);
    Ok(())
}

/// Storage names for the pairs file and logs.
pub fn storage_name(s: Storage) -> &'static str {
    match s {
        Storage::F32 => "f32",
        Storage::F16 => "f16",
        Storage::BF16 => "bf16",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("provsearch-zoo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn recipes_are_deterministic_and_rebuilt_only_when_stale() {
        let sources = Sources::from_checkout();
        let all = recipes::recipes();
        let recipe = all
            .iter()
            .find(|r| r.id == "gen/L-base--evade")
            .expect("recipe");
        let (r1, r2) = (scratch("a"), scratch("b"));
        for root in [&r1, &r2] {
            link(&sources.trained, &root.join("trained")).unwrap();
            assert!(build_if_stale(root, recipe).unwrap());
        }
        let bytes =
            |root: &Path| std::fs::read(root.join(&recipe.id).join("model.safetensors")).unwrap();
        assert_eq!(bytes(&r1), bytes(&r2));
        assert_ne!(
            bytes(&r1),
            std::fs::read(sources.trained.join("L-base/model.safetensors")).unwrap()
        );
        // Up to date: not rebuilt; a changed recipe is.
        assert!(!build_if_stale(&r1, recipe).unwrap());
        let mut changed = recipe.clone();
        changed.seed += 1;
        assert!(build_if_stale(&r1, &changed).unwrap());
        assert_ne!(bytes(&r1), bytes(&r2));
        for root in [r1, r2] {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}
