//! Checkpoint → [`Fingerprint`]: reads config, model card and tokenizer, opens the weights, computes the weight
//! signals and the file digests (in parallel), and assembles the record.

use crate::digest::{blake3_hex, file_blake3, hashed_sha256, recorded_sha256, sha256_hex};
use crate::error::{Error, Result};
use crate::locate::{is_native_weight_file, locate, ModelLocation, NATIVE_PARAMS};
use crate::signals;
use crate::vocab::{resolve_anchors, tokenizer_signals};
use crate::weights::gguf::GgufSource;
use crate::weights::native::NativeRotary;
use crate::weights::{quantized, WeightSource};
use provsearch_formats::card::{parse_model_card, ModelCard};
use provsearch_formats::config::ModelConfig;
use provsearch_formats::tokenizer::{load_vocabulary, Vocabulary};
use provsearch_formats::Error as FormatError;
use provsearch_index::schema::{
    FileDigest, Fingerprint, Metadata, Source, SourceFormat, TensorSamples, TokenizerSignals,
    FINGERPRINT_VERSION, MAX_FINGERPRINT_BYTES,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Most weight files listed individually in a fingerprint (the content digest covers all of them).
const MAX_LISTED_FILES: usize = 64;
/// Most tags kept from a model card.
const MAX_TAGS: usize = 32;

/// How to fingerprint.
#[derive(Debug, Clone, Default)]
pub struct FingerprintOptions {
    /// Override the model id.
    pub id: Option<String>,
    /// Hugging Face cache directory for Hub ids (default: `$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/...`).
    pub hf_cache: Option<PathBuf>,
    /// Skip the BLAKE3 digests of the weight files (`content_digest` is then empty and byte-identity is not
    /// detected).
    pub skip_digests: bool,
    /// Also compute SHA-256 of every weight file (read from the link for free in an HF cache snapshot).
    pub sha256: bool,
    /// Hash HF-cache blobs too and check them against the SHA-256 their names claim (which is otherwise
    /// trusted, to spare a pass over the bytes); a mismatch is [`crate::Error::DigestMismatch`].
    pub verify_digests: bool,
}

/// A fingerprint and what `compare` needs beyond it (the exact vocabulary, for exact VOA).
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The fingerprint.
    pub fingerprint: Fingerprint,
    /// The model's vocabulary, when it has a tokenizer.
    pub vocabulary: Option<Vocabulary>,
    /// Where the files were.
    pub location: ModelLocation,
}

/// What a PEFT adapter repository holds instead of `config.json`.
const ADAPTER_CONFIG: &str = "adapter_config.json";

/// The error for a PEFT adapter, naming its type and base model when its `adapter_config.json` says (a
/// malformed one still gets the adapter error, without them).
fn adapter_error(root: &Path, adapter_config: &str) -> Error {
    let parsed: Option<serde_json::Value> = serde_json::from_str(adapter_config).ok();
    let field = |key: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Error::Adapter {
        path: root.to_path_buf(),
        kind: field("peft_type").unwrap_or_else(|| "unknown".into()),
        base: field("base_model_name_or_path"),
    }
}

/// Fingerprint a model named by a path or a Hub id (resolved in the local cache only).
pub fn fingerprint(spec: &str, options: &FingerprintOptions) -> Result<Extracted> {
    let location = locate(spec, options.hf_cache.as_deref())?;
    fingerprint_location(location, options)
}

fn read_text(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8(bytes).map_err(|e| {
            FormatError::corrupt(
                path,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FormatError::io(path, e).into()),
    }
}

/// The opened weights: safetensors (plain or quantized) or a GGUF file, which also carries config and
/// vocabulary in its metadata.
enum Weights {
    Safetensors(Box<dyn WeightSource>),
    Gguf(GgufSource),
}

impl Weights {
    fn source(&self) -> &dyn WeightSource {
        match self {
            Weights::Safetensors(s) => s.as_ref(),
            Weights::Gguf(g) => g,
        }
    }

    fn gguf(&self) -> Option<&GgufSource> {
        match self {
            Weights::Gguf(g) => Some(g),
            Weights::Safetensors(_) => None,
        }
    }
}

/// Open the weights. `native_params` is the config of a native release (read from `params.json`): its Q/K
/// rows are read in HF's order.
fn open_weights(location: &ModelLocation, native_params: Option<&ModelConfig>) -> Result<Weights> {
    match location.format {
        SourceFormat::Safetensors => Ok(Weights::Safetensors(NativeRotary::wrap(
            quantized::open(&location.weight_files, &location.root)?,
            native_params,
        ))),
        SourceFormat::Gguf => {
            if location.weight_files.is_empty() {
                return Err(Error::no_weights(
                    &location.root,
                    "no .gguf file in the directory",
                ));
            }
            Ok(Weights::Gguf(GgufSource::open_parts(
                &location.weight_files,
            )?))
        }
    }
}

/// Fingerprint a located model.
pub fn fingerprint_location(
    location: ModelLocation,
    options: &FingerprintOptions,
) -> Result<Extracted> {
    let config_path = location.root.join("config.json");
    // Mistral's native releases (`consolidated.safetensors`) ship `params.json` instead: the same counts under
    // Meta's names (`dim`, `n_layers`, `n_heads`, `n_kv_heads`, `hidden_dim`), which the config aliases cover.
    let params_path = location.root.join(NATIVE_PARAMS);
    let native = location.format == SourceFormat::Safetensors
        && !location.weight_files.is_empty()
        && location
            .weight_files
            .iter()
            .all(|f| is_native_weight_file(f));
    // Only a release configured by params.json is taken to store Q/K rows natively: native tensor names beside a
    // config.json are a renamed HF checkpoint as often as not, and are read as stored.
    let config_text = read_text(&config_path)?;
    let params_text = match config_text {
        None if native => read_text(&params_path)?,
        _ => None,
    };
    let native_params = params_text.is_some();
    let config = match (config_text, params_text) {
        (Some(text), _) => Some(ModelConfig::parse(&config_path, &text)?),
        (None, Some(text)) => Some(ModelConfig::parse(&params_path, &text)?),
        (None, None) if location.format == SourceFormat::Safetensors => {
            if let Some(adapter) = read_text(&location.root.join(ADAPTER_CONFIG))? {
                return Err(adapter_error(&location.root, &adapter));
            }
            if location.is_directory {
                return Err(Error::NotFound {
                    spec: config_path.display().to_string(),
                    detail: if native {
                        format!(
                            "the model directory has no config.json, nor the {NATIVE_PARAMS} of Mistral's native \
                             layout"
                        )
                    } else {
                        "the model directory has no config.json (every Hugging Face snapshot has one)".into()
                    },
                });
            }
            None
        }
        (None, None) => None,
    };
    let card = read_text(&location.root.join("README.md"))?
        .map(|t| parse_model_card(&t))
        .unwrap_or_default();
    let weights = open_weights(&location, config.as_ref().filter(|_| native_params))?;
    let source = weights.source();
    // A GGUF file carries its config in its metadata; a config.json beside it wins.
    let config = config.or_else(|| weights.gguf().map(|g| g.file().config()));
    let plan = signals::plan(source);
    let files = source.files();

    // Three jobs: the tokenizer (parse, then anchors and features), the weight pass (embedding statistics and
    // layer samples) and the file digests; then the embedding signals, which need only the anchors and the
    // embedding statistics. On two cores their order decides the wall time. The tokenizer starts with one
    // serial parse, so it and the weight pass start first, side by side. The digest can be shared by any idle
    // core at any time (it splits into the leaves of its BLAKE3 tree, each read and hashed by one rayon task),
    // so it is queued once the vocabulary is parsed and fills the cores from then on. Queued first, it took a
    // core from the start and the tokenizer waited for the weight pass; queued after the weight pass, a cold
    // page cache was read in random pieces by the layer samples before the digest's sequential reads began.
    // The embedding signals start as soon as the anchors and the embedding statistics are both ready, while
    // the tokenizer features and the layer samples may still be running.
    let vocabulary: OnceLock<Result<Option<Vocabulary>>> = OnceLock::new();
    let anchors: OnceLock<Vec<Option<u32>>> = OnceLock::new();
    let features: OnceLock<TokenizerSignals> = OnceLock::new();
    let embedding_pass: OnceLock<Result<Option<signals::embedding::EmbeddingPass>>> =
        OnceLock::new();
    let layers: OnceLock<Result<(TensorSamples, TensorSamples)>> = OnceLock::new();
    let embedding = OnceLock::new();
    let digests = OnceLock::new();
    // The anchors and the embedding statistics count down (each exactly once, whether or not it succeeded);
    // whichever comes last computes the embedding signals.
    let pending = AtomicUsize::new(2);
    let finish = || {
        if pending.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        if let (Some(Ok(vocabulary)), Some(Ok(Some(pass)))) =
            (vocabulary.get(), embedding_pass.get())
        {
            let token_rows = vocabulary
                .as_ref()
                .and_then(|v| v.tokens.iter().map(|(_, id)| *id as u64 + 1).max());
            let anchor_ids = anchors.get().map_or(&[][..], Vec::as_slice);
            let _ = embedding.set(signals::embedding::finish_embedding(
                source, pass, anchor_ids, token_rows,
            ));
        }
    };
    rayon::scope(|s| {
        s.spawn(|s| {
            let parsed = vocabulary.get_or_init(|| load_model_vocabulary(&location.root, &weights));
            s.spawn(|_| {
                let _ = digests.set(file_digests(&files, &location.root, options));
            });
            match parsed {
                // Anchors and features both read the vocabulary only: side by side.
                Ok(Some(v)) => {
                    rayon::join(
                        || {
                            let _ = anchors.set(resolve_anchors(v));
                            finish();
                        },
                        || {
                            let _ = features.set(tokenizer_signals(v));
                        },
                    );
                }
                _ => finish(),
            }
        });
        s.spawn(|_| {
            // Two independent reads: a core that has finished the tokenizer takes the layer samples.
            rayon::join(
                || {
                    let pass = plan
                        .embedding
                        .map(|i| signals::embedding::embedding_pass(source, i))
                        .transpose();
                    let _ = embedding_pass.set(pass);
                    finish();
                },
                || {
                    let _ = layers.set(signals::layer_signals(source, &plan));
                },
            );
        });
    });
    // Errors in the order of the jobs: tokenizer, weights, embedding signals, digests. The scope has run every
    // job it spawned (a panic in one is resumed by `rayon::scope`).
    let ran = "rayon::scope returns after every job it spawned";
    let vocabulary = vocabulary.into_inner().expect(ran)?;
    let tokenizer = features.into_inner();
    embedding_pass.into_inner().expect(ran)?;
    let (matrices, norms) = layers.into_inner().expect(ran)?;
    let embedding = embedding.into_inner().transpose()?;
    let (mut digests, content_digest) = digests.into_inner().expect(ran)?;
    let mut weight_signals = signals::assemble(plan, embedding, matrices, norms);
    weight_signals.notes.extend(source.notes());

    let total_bytes = digests.iter().map(|d| d.bytes).sum();
    digests.truncate(MAX_LISTED_FILES);

    let metas = source.tensors();
    let mut dtypes: Vec<String> = metas.iter().map(|m| m.dtype.clone()).collect();
    dtypes.sort();
    dtypes.dedup();

    let tokenizer_hash = tokenizer.as_ref().map(|t| t.vocab_hash.as_str());
    let metadata = metadata(config.as_ref(), &card, vocabulary.as_ref(), tokenizer_hash);
    let mut fingerprint = Fingerprint {
        version: FINGERPRINT_VERSION,
        source: Source {
            id: options.id.clone().unwrap_or_else(|| location.id.clone()),
            revision: location.revision.clone(),
            format: location.format,
            quantization: source.quantization(),
            files: digests,
            content_digest,
            total_bytes,
            dtypes,
            parameter_count: metas.iter().map(|m| m.numel()).sum(),
            tensor_count: metas.len() as u32,
        },
        metadata,
        tokenizer,
        weights: weight_signals,
    };
    fingerprint.fit_budget(MAX_FINGERPRINT_BYTES);
    Ok(Extracted {
        fingerprint,
        vocabulary,
        location,
    })
}

/// The vocabulary: tokenizer files beside a GGUF file win over its `tokenizer.ggml.*` metadata.
fn load_model_vocabulary(root: &Path, weights: &Weights) -> Result<Option<Vocabulary>> {
    Ok(match load_vocabulary(root)? {
        Some(v) => Some(v),
        None => match weights.gguf() {
            Some(g) => g.file().vocabulary()?,
            None => None,
        },
    })
}

/// Size and digests of every weight file, and the content digest over them.
///
/// Policy: when every file's SHA-256 is known for free (an HF cache snapshot, a `--local-dir` download whose
/// files are unchanged since; see [`crate::digest`]), the content digest is
/// `sha256:<SHA-256 of the file SHA-256s>` and nothing is read; otherwise it is `blake3:<BLAKE3 of the file
/// BLAKE3s>`. Two fingerprints are byte-identical when their content digests are equal (same scheme).
fn file_digests(
    files: &[PathBuf],
    root: &Path,
    options: &FingerprintOptions,
) -> Result<(Vec<FileDigest>, String)> {
    let recorded: Vec<Option<(String, String)>> =
        files.iter().map(|p| recorded_sha256(p)).collect();
    let all_recorded = !files.is_empty() && recorded.iter().all(Option::is_some);
    let digests = files
        .iter()
        .zip(recorded)
        .map(|(path, recorded)| {
            let bytes = std::fs::metadata(path)
                .map_err(|e| FormatError::io(path, e))?
                .len();
            let blake3 = if options.skip_digests || all_recorded {
                String::new()
            } else {
                file_blake3(path)?
            };
            let sha256 = match (recorded, options.sha256) {
                (Some((known, claimed_by)), _) if options.verify_digests => {
                    let actual = hashed_sha256(path)?;
                    if actual != known {
                        return Err(Error::DigestMismatch {
                            path: path.clone(),
                            claimed_by,
                            named: known,
                            actual,
                        });
                    }
                    known
                }
                (Some((known, _)), _) => known,
                (None, true) => hashed_sha256(path)?,
                (None, false) => String::new(),
            };
            Ok(FileDigest {
                name: relative_name(path, root),
                bytes,
                blake3,
                sha256,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let content = if options.skip_digests {
        String::new()
    } else if all_recorded {
        let list: Vec<&str> = digests.iter().map(|d| d.sha256.as_str()).collect();
        format!("sha256:{}", sha256_hex(&list.join("\n")))
    } else {
        let list: Vec<&str> = digests.iter().map(|d| d.blake3.as_str()).collect();
        format!("blake3:{}", blake3_hex(&list.join("\n")))
    };
    Ok((digests, content))
}

fn relative_name(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// `tokenizer_hash` is the vocabulary hash ([`crate::vocab::vocab_hash`], already computed for the tokenizer features).
fn metadata(
    config: Option<&ModelConfig>,
    card: &ModelCard,
    vocab: Option<&Vocabulary>,
    tokenizer_hash: Option<&str>,
) -> Metadata {
    let default_config = ModelConfig {
        model_type: "unknown".into(),
        architectures: vec!["unknown".into()],
        norm_type: "unknown".into(),
        attention_style: "MHA".into(),
        pos_encoding: "absolute".into(),
        ..ModelConfig::default()
    };
    let c = config.unwrap_or(&default_config);
    let tokenizer_hash = tokenizer_hash.unwrap_or_default();
    let special = vocab.map(|v| v.special).unwrap_or_default();
    let mut tags = card.tags.clone();
    tags.truncate(MAX_TAGS);
    Metadata {
        model_type: c.model_type.clone(),
        architectures: c.architectures.clone(),
        hidden_size: c.hidden_size,
        num_layers: c.num_layers,
        num_attention_heads: c.num_attention_heads,
        num_key_value_heads: c.num_key_value_heads,
        intermediate_size: c.intermediate_size,
        vocab_size: c.vocab_size,
        max_position_embeddings: c.max_position_embeddings,
        hidden_act: c.hidden_act.clone(),
        head_dim: c.head_dim,
        rope_theta: c.rope_theta,
        rope_scaling_type: c.rope_scaling_type.clone(),
        tie_word_embeddings: c.tie_word_embeddings,
        norm_type: c.norm_type.clone(),
        attention_style: c.attention_style.clone(),
        pos_encoding: c.pos_encoding.clone(),
        qk_norm: c.qk_norm,
        attention_bias: c.attention_bias,
        bos_token_id: special.bos.or(c.bos_token_id),
        eos_token_id: special.eos.or(c.eos_token_id),
        arch_hash: config.map(ModelConfig::arch_hash).unwrap_or_default(),
        family_hash: config
            .map(|c| c.family_hash(tokenizer_hash))
            .unwrap_or_default(),
        declared_base_models: card.base_models.clone(),
        name_or_path: c.name_or_path.clone(),
        license: card.license.clone(),
        tags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datasets::synth::{build, Family, Spec};
    use datasets::Storage;

    /// Fingerprints of fixed synthetic models (the three tokenizer conventions, three storage dtypes), pinned by
    /// the SHA-256 of their JSON. Speed work must leave every byte unchanged. When a change of definition is
    /// meant, bump `FINGERPRINT_VERSION` and update the hashes (the test prints the new ones).
    #[test]
    fn fingerprints_of_fixed_models_are_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                Family::Llama,
                11,
                Storage::F32,
                "0f4ffc2a7d4c9c3275398d852470c9ce0bdcf30615f89273f2e0a2d1a0ebe3ba",
            ),
            (
                Family::Gpt2,
                12,
                Storage::F16,
                "c2a0a4d493026e6e53ee56d6a11d77d2bb55de7a96c4a5329d154f1ef4c8b5d9",
            ),
            (
                Family::Bert,
                13,
                Storage::BF16,
                "1c245f3498f2e33b5462b2c919819275d29147d6b8b815471d5bb8d5f00ba841",
            ),
        ];
        let mut failures = Vec::new();
        for (family, seed, storage, pinned) in cases {
            let path = dir.path().join(format!("{family:?}"));
            build(&Spec::small(family, seed))
                .write(&path, storage, 1)
                .unwrap();
            let options = FingerprintOptions {
                id: Some("pinned".into()),
                ..FingerprintOptions::default()
            };
            let fp = fingerprint(path.to_str().unwrap(), &options)
                .unwrap()
                .fingerprint;
            let hash = sha256_hex(&serde_json::to_string(&fp).unwrap());
            if hash != pinned {
                failures.push(format!("{family:?}: {hash} (pinned {pinned})"));
            }
        }
        assert!(
            failures.is_empty(),
            "fingerprints changed:\n{}",
            failures.join("\n")
        );
    }
}
