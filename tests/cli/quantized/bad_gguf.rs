//! Damaged GGUF files through `provsearch fingerprint`: exit 1 with a message naming the file and the
//! problem, never a panic.

use super::gguf::{spec, write_gguf};
use crate::cli::util::{assert_error, fingerprint, provsearch};
use datasets::synth::build;
use provsearch_formats::gguf::GgmlType;
use std::path::{Path, PathBuf};

/// A valid Q8_0 file to damage, and its bytes.
fn valid(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("model.gguf");
    write_gguf(&build(&spec(1)), &path, GgmlType::Q8_0);
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// Byte offset of the info of tensor `name`: just after its name, at `n_dims`.
fn tensor_info(bytes: &[u8], name: &str) -> usize {
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    let at = bytes
        .windows(key.len())
        .position(|w| w == key.as_slice())
        .expect("tensor name in the header");
    at + key.len()
}

#[test]
fn truncated_gguf() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, bytes) = valid(tmp.path());
    // Cut in the tensor data: the last tensors now lie beyond the end.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_error(
        &fingerprint(&path),
        "model.gguf",
        &["beyond the end of the file"],
    );
    // Cut in the tensor infos: the header itself runs out.
    let cut = tensor_info(&bytes, "output_norm.weight");
    std::fs::write(&path, &bytes[..cut]).unwrap();
    assert_error(&fingerprint(&path), "model.gguf", &["corrupt", "truncated"]);
    // Cut in the metadata: the counts promise more than the file holds.
    std::fs::write(&path, &bytes[..200]).unwrap();
    assert_error(
        &fingerprint(&path),
        "model.gguf",
        &["tensor count", "remain"],
    );
    // Cut before the header is complete.
    std::fs::write(&path, &bytes[..10]).unwrap();
    assert_error(&fingerprint(&path), "model.gguf", &["too short"]);
}

#[test]
fn unknown_quant_type() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, mut bytes) = valid(tmp.path());
    // n_dims (4) and two dims (16) precede the type.
    let at = tensor_info(&bytes, "blk.0.attn_q.weight") + 4 + 16;
    bytes[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert_error(
        &fingerprint(&path),
        "model.gguf",
        &["unsupported", "blk.0.attn_q.weight", "unknown ggml type 99"],
    );
}

#[test]
fn tensor_data_beyond_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, mut bytes) = valid(tmp.path());
    let at = tensor_info(&bytes, "blk.1.ffn_down.weight") + 4 + 16 + 4;
    bytes[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert_error(
        &fingerprint(&path),
        "model.gguf",
        &["blk.1.ffn_down.weight", "beyond the end of the file"],
    );
}

#[test]
fn absurd_header_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, bytes) = valid(tmp.path());
    // Tensor count at byte 8, metadata count at byte 16.
    for (at, what) in [(8, "tensor count"), (16, "metadata count")] {
        let mut b = bytes.clone();
        b[at..at + 8].copy_from_slice(&(u64::MAX / 3).to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        assert_error(&fingerprint(&path), "model.gguf", &["corrupt", what]);
    }
    // An array length in the metadata that the file cannot hold.
    let mut b = bytes.clone();
    let key = b"tokenizer.ggml.tokens";
    let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4 + 4;
    b[at..at + 8].copy_from_slice(&(1u64 << 50).to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    assert_error(
        &fingerprint(&path),
        "model.gguf",
        &["tokenizer.ggml.tokens", "array length"],
    );
}

#[test]
fn tensors_in_types_without_a_dequantizer_are_skipped_not_misread() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, mut bytes) = valid(tmp.path());
    // Re-label a Q8_0 matrix as IQ2_XXS (16; no dequantizer here, and its smaller blocks still fit the file)
    // and an F32 norm as I32 (26; same size, integer values).
    let q = tensor_info(&bytes, "blk.0.attn_q.weight") + 4 + 16;
    bytes[q..q + 4].copy_from_slice(&16u32.to_le_bytes());
    let norm = tensor_info(&bytes, "blk.0.attn_norm.weight") + 4 + 8;
    bytes[norm..norm + 4].copy_from_slice(&26u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let run = provsearch([Path::new("fingerprint"), &path, Path::new("--json")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let notes = f["weights"]["notes"].to_string();
    assert!(notes.contains("2 integer/packed weight tensors"), "{notes}");
    assert_eq!(
        f["source"]["dtypes"],
        serde_json::json!(["F32", "I32", "IQ2_XXS", "Q8_0"])
    );
    // 2 layers × 7 matrices, less the one that cannot be read.
    assert_eq!(
        f["weights"]["matrices"]["entries"]
            .as_array()
            .unwrap()
            .len(),
        13
    );
}
