//! Bad input gets a clear error naming the file and the problem, exit code 1, and never a panic.

use super::util::{assert_error, fingerprint, synth};
use datasets::synth::Family;
use std::path::{Path, PathBuf};

/// A valid synthetic snapshot to damage.
fn snapshot() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    synth(&dir, Family::Llama, 1);
    (tmp, dir)
}

/// Replace the safetensors header of `file` by `header` (data section kept as it is).
fn rewrite_header(file: &Path, header: &serde_json::Value) {
    let bytes = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let data = &bytes[8 + n..];
    let text = serde_json::to_string(header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(data);
    std::fs::write(file, out).unwrap();
}

fn header(file: &Path) -> serde_json::Value {
    let bytes = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

#[test]
fn truncated_safetensors() {
    let (_tmp, dir) = snapshot();
    let file = dir.join("model.safetensors");
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    assert_error(&fingerprint(&dir), "model.safetensors", &["corrupt"]);
}

#[test]
fn header_length_beyond_the_file() {
    let (_tmp, dir) = snapshot();
    let file = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&file, bytes).unwrap();
    assert_error(&fingerprint(&dir), "model.safetensors", &["header"]);
}

#[test]
fn overlapping_and_out_of_range_offsets() {
    let (_tmp, dir) = snapshot();
    let file = dir.join("model.safetensors");
    let mut h = header(&file);
    let names: Vec<String> = h
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    // Make the second tensor start inside the first.
    let first = h[&names[0]]["data_offsets"].clone();
    let second_len = h[&names[1]]["data_offsets"][1].as_u64().unwrap()
        - h[&names[1]]["data_offsets"][0].as_u64().unwrap();
    let start = first[0].as_u64().unwrap() + 4;
    h[&names[1]]["data_offsets"] = serde_json::json!([start, start + second_len]);
    rewrite_header(&file, &h);
    assert_error(&fingerprint(&dir), "model.safetensors", &["overlap"]);

    let (_tmp2, dir2) = snapshot();
    let file2 = dir2.join("model.safetensors");
    let mut h = header(&file2);
    let last = names.last().unwrap();
    let end = h[last]["data_offsets"][1].as_u64().unwrap();
    let len = end - h[last]["data_offsets"][0].as_u64().unwrap();
    h[last]["data_offsets"] = serde_json::json!([end + 1024, end + 1024 + len]);
    rewrite_header(&file2, &h);
    assert_error(&fingerprint(&dir2), "model.safetensors", &["range"]);
}

#[test]
fn dtype_and_shape_mismatch() {
    let (_tmp, dir) = snapshot();
    let file = dir.join("model.safetensors");
    let mut h = header(&file);
    h["model.norm.weight"]["shape"] = serde_json::json!([3]);
    rewrite_header(&file, &h);
    assert_error(
        &fingerprint(&dir),
        "model.safetensors",
        &["model.norm.weight"],
    );
}

#[test]
fn malformed_config_and_tokenizer_json() {
    let (_tmp, dir) = snapshot();
    std::fs::write(dir.join("config.json"), "{\"hidden_size\": 64,,}").unwrap();
    assert_error(&fingerprint(&dir), "config.json", &["json"]);

    let (_tmp2, dir2) = snapshot();
    std::fs::write(
        dir2.join("tokenizer.json"),
        "{\"model\": {\"type\": \"BPE\", \"vocab\": [1, 2",
    )
    .unwrap();
    assert_error(&fingerprint(&dir2), "tokenizer.json", &["json"]);
}

#[test]
fn missing_config() {
    let (_tmp, dir) = snapshot();
    std::fs::remove_file(dir.join("config.json")).unwrap();
    assert_error(&fingerprint(&dir), "config.json", &["no config.json"]);
}

/// Every value the fingerprint reads is checked: the whole embedding, every norm vector, and the canonical
/// rows of each matrix (an overflowed tensor is NaN/Inf throughout, so its rows show it).
#[test]
fn nan_and_infinite_weights() {
    let cases: [(&str, Option<usize>, f32, &str); 3] = [
        ("model.layers.1.mlp.up_proj.weight", None, f32::NAN, "NaN"),
        (
            "model.layers.2.self_attn.k_proj.weight",
            None,
            f32::NEG_INFINITY,
            "infinite",
        ),
        (
            "model.embed_tokens.weight",
            Some(12_345),
            f32::INFINITY,
            "infinite",
        ),
    ];
    for (tensor, position, value, word) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("a"), tmp.path().join("b"));
        synth(&src, Family::Llama, 1);
        super::util::derive(&src, &dst, datasets::Storage::F16, 1, |c| {
            let data = &mut c.get_mut(tensor).unwrap().data;
            match position {
                Some(i) => data[i] = value,
                None => data.iter_mut().for_each(|v| *v = value),
            }
        });
        assert_error(&fingerprint(&dst), "model.safetensors", &[tensor, word]);
    }
}

#[test]
fn shard_index_pointing_outside_the_snapshot() {
    let (_tmp, dir) = snapshot();
    let index = serde_json::json!({"metadata": {}, "weight_map": {"model.norm.weight": "../x.safetensors"}});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::write(dir.parent().unwrap().join("x.safetensors"), b"whatever").unwrap();
    assert_error(
        &fingerprint(&dir),
        "model.safetensors.index.json",
        &["refused"],
    );
}

#[test]
fn pickle_checkpoints_are_refused_with_the_safetensors_alternative() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("old");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    std::fs::write(dir.join("pytorch_model.bin"), b"\x80\x02}q\x00.").unwrap();
    assert_error(
        &fingerprint(&dir),
        "pytorch_model.bin",
        &["pickle", "safetensors"],
    );
    assert_error(
        &fingerprint(&dir.join("pytorch_model.bin")),
        "pytorch_model.bin",
        &["safetensors"],
    );
}

/// A weight file whose name does not say its format is read by its first bytes: a PyTorch zip or pickle
/// stream is refused as pickle, and anything else is not a weight file.
#[test]
fn files_without_a_weight_extension_are_judged_by_content() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("checkpoint");
    std::fs::write(&zip, b"PK\x03\x04archive/data.pkl").unwrap();
    assert_error(&fingerprint(&zip), "checkpoint", &["pickle", "safetensors"]);
    let pickle = tmp.path().join("weights.pt2");
    std::fs::write(&pickle, b"\x80\x04\x95").unwrap();
    assert_error(&fingerprint(&pickle), "weights.pt2", &["pickle"]);
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "not weights\n").unwrap();
    assert_error(
        &fingerprint(&text),
        "notes.txt",
        &["first bytes", "safetensors or GGUF"],
    );
    // Safetensors under another name is read as safetensors.
    let (_keep, dir) = snapshot();
    let renamed = tmp.path().join("weights.st");
    std::fs::copy(dir.join("model.safetensors"), &renamed).unwrap();
    let run = fingerprint(&renamed);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn nothing_there() {
    let run = fingerprint(Path::new("/nonexistent/model-dir"));
    assert_error(&run, "/nonexistent/model-dir", &["not found"]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), "{}").unwrap();
    assert_error(
        &fingerprint(tmp.path()),
        &tmp.path().display().to_string(),
        &["no readable weights"],
    );
}

/// A PEFT adapter repository (adapter_config.json + adapter_model.safetensors, no config.json) holds low-rank
/// deltas, not a model: the error says so, names its base model, and says what to do, whether the directory or
/// the adapter file is named; a malformed adapter_config.json still gets it. A full model that also ships an
/// adapter_config.json is fingerprinted as usual.
#[test]
fn peft_adapters_are_refused_with_their_base_model() {
    use safetensors::tensor::{Dtype, TensorView};
    let tmp = tempfile::tempdir().unwrap();
    let adapter = tmp.path().join("adapter");
    std::fs::create_dir_all(&adapter).unwrap();
    let a = vec![0u8; 8 * 64 * 4];
    let b = vec![0u8; 64 * 8 * 4];
    let views = vec![
        (
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".to_string(),
            TensorView::new(Dtype::F32, vec![8, 64], &a).unwrap(),
        ),
        (
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight".to_string(),
            TensorView::new(Dtype::F32, vec![64, 8], &b).unwrap(),
        ),
    ];
    safetensors::serialize_to_file(views, None, &adapter.join("adapter_model.safetensors"))
        .unwrap();
    let config = serde_json::json!({
        "base_model_name_or_path": "acme/base-7b",
        "peft_type": "LORA",
        "r": 8,
        "target_modules": ["q_proj"],
    });
    std::fs::write(adapter.join("adapter_config.json"), config.to_string()).unwrap();
    let words = ["PEFT LORA adapter", "acme/base-7b", "merge"];
    assert_error(&fingerprint(&adapter), "adapter", &words);
    assert_error(
        &fingerprint(&adapter.join("adapter_model.safetensors")),
        "adapter",
        &words,
    );
    std::fs::write(adapter.join("adapter_config.json"), "{ not json").unwrap();
    assert_error(
        &fingerprint(&adapter),
        "adapter",
        &["PEFT unknown adapter", "merge"],
    );

    let (_tmp, dir) = snapshot();
    std::fs::write(dir.join("adapter_config.json"), config.to_string()).unwrap();
    assert_eq!(fingerprint(&dir).code, 0);
}
