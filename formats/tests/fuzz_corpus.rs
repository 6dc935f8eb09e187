//! Replays the saved fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz entry points, so every input
//! that once crashed a parser, and every seed, is checked by `cargo test` without cargo-fuzz.

use provsearch_formats::fuzzing;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Run every file of a target's corpus; fail listing each file that panicked. Returns how many ran.
fn replay(target: &str, f: fn(&[u8])) -> usize {
    let files = corpus_files(target);
    let mut panicked = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if catch_unwind(AssertUnwindSafe(|| f(&data))).is_err() {
            panicked.push(file.display().to_string());
        }
    }
    assert!(
        panicked.is_empty(),
        "{target}: these corpus inputs panic:\n{}",
        panicked.join("\n")
    );
    files.len()
}

#[test]
fn safetensors_header_corpus() {
    let n = replay("safetensors_header", fuzzing::fuzz_safetensors_header);
    assert!(
        n >= 10,
        "expected the saved safetensors_header corpus, found {n} files"
    );
}

#[test]
fn config_corpus() {
    let n = replay("config", fuzzing::fuzz_config);
    assert!(n >= 10, "expected the saved config corpus, found {n} files");
}

#[test]
fn card_corpus() {
    let n = replay("card", fuzzing::fuzz_card);
    assert!(n >= 5, "expected the saved card corpus, found {n} files");
}

#[test]
fn tokenizer_json_corpus() {
    let n = replay("tokenizer_json", fuzzing::fuzz_tokenizer_json);
    assert!(
        n >= 3,
        "expected the saved tokenizer_json corpus, found {n} files"
    );
}

#[test]
fn tokenizer_model_corpus() {
    let n = replay("tokenizer_model", fuzzing::fuzz_tokenizer_model);
    assert!(
        n >= 10,
        "expected the saved tokenizer_model corpus, found {n} files"
    );
}
