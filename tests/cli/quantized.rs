//! Quantized derivatives fingerprint like their parents: the real SmolLM2-135M-Instruct Q4_1 GGUF, GGUF files
//! written here from safetensors checkpoints in several ggml quant types, safetensors checkpoints in the GPTQ,
//! AWQ, bitsandbytes and FP8 layouts, and damaged GGUF files that must fail cleanly; all of them ingested into
//! an index and queried, and models split by gguf-split or shipped several to a repo.

mod bad_gguf;
mod gguf;
mod index;
mod real_gguf;
mod safetensors;
