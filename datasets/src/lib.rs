//! provsearch evaluation data: real checkpoints on disk, made deterministically.
//!
//! - [`checkpoint`]: read and write Hugging Face snapshot directories (safetensors through the `safetensors`
//!   crate's serializer, config and tokenizer files alongside).
//! - [`synth`]: synthetic models in the Llama, GPT-2 and BERT layouts with real config.json and tokenizer.json.
//! - [`derive`]: mechanical derivations (dtype, quantisation, noise, LoRA, pruning, merges) and fresh
//!   re-initialisations.
//! - [`quantize`]: quantized copies in the layouts of GPTQ, AWQ, bitsandbytes and FP8 checkpoints.
//! - [`residual`]: residual-stream edits (channel permutation, width pruning and growth).
//! - [`grow`]: depth up-scaling and frankenmerges (stacked layers), sparse upcycling into experts.
//! - [`native`]: a Llama-layout checkpoint in Mistral's native layout (`consolidated.safetensors`, `params.json`).
//! - [`vocab_edit`]: vocabulary pruning and extension that keep embeddings, tokenizer.json and config in step.
//! - [`local_dir`]: huggingface_hub's `--local-dir` download records.
//! - [`zoo`]: the lineage zoo (mechanical derivations of the trained zoo and MiniLM) and its labelled pairs.
//! - [`fingerprints`]: synthetic fingerprints with planted families, for the index's scale benchmark.
//! - [`rng`]: the deterministic random source behind all of them.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod derive;
pub mod fingerprints;
pub mod grow;
pub mod local_dir;
pub mod native;
pub mod quantize;
pub mod residual;
pub mod rng;
pub mod synth;
pub mod vocab_edit;
pub mod zoo;

pub use checkpoint::{Checkpoint, Storage, Tensor};
