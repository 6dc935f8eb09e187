//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// The directory of real test models (`$PROVSEARCH_TEST_MODELS`, else `<repo>/.cache/test-models`). Fails with
/// instructions when they have not been fetched.
pub fn test_models() -> PathBuf {
    let dir = std::env::var_os("PROVSEARCH_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/test-models"));
    assert!(
        dir.join("minilm/config.json").exists() && dir.join("minilm/model.safetensors").exists(),
        "real test models missing at {}: run scripts/fetch-test-models.sh first",
        dir.display()
    );
    dir
}
