//! What to download: the files a fingerprint reads, chosen from a repository listing, with every name checked
//! to stay inside the snapshot.

use super::clip;
use crate::locate::is_native_weight_file;
use provsearch_formats::gguf::split::SplitName;
use std::path::Path;

/// Files a fingerprint reads beside the weights; each is downloaded when the repository lists it.
pub const METADATA_FILES: &[&str] = &[
    "config.json",
    "README.md",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "spm.model",
    "tekken.json",
    "tiktoken.model",
    "qwen.tiktoken",
    "quantize_config.json",
    "quant_config.json",
    // Mistral's native layout has this instead of config.json.
    "params.json",
    // A PEFT adapter repository has this instead of config.json; fetched so that the error can say so.
    "adapter_config.json",
];

/// Extensions never downloaded, whatever a listing or shard index says: pickle (runs code when loaded) and
/// code. Only names chosen above are ever fetched; this is the safety net behind that choice.
const REFUSED_EXTENSIONS: &[&str] = &[
    "bin", "pt", "pth", "ckpt", "pkl", "pickle", "py", "pyc", "so", "dylib", "dll", "exe", "sh",
];

const PICKLE_EXTENSIONS: &[&str] = &["bin", "pt", "pth", "ckpt", "pkl", "pickle"];

const INDEX_FILE: &str = "model.safetensors.index.json";

/// The names of every part of the gguf-split model that the repository path `name` is a part of
/// (`<prefix>-00001-of-00003.gguf`, ...), or `name` alone when it is not a part.
pub(super) fn model_files(name: &str) -> Vec<String> {
    SplitName::parse(name).map_or_else(|| vec![name.to_string()], |s| s.part_names())
}

fn extension(name: &str) -> Option<String> {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

fn has_extension(name: &str, exts: &[&str]) -> bool {
    extension(name).is_some_and(|e| exts.contains(&e.as_str()))
}

/// A repository path as it may be requested and written below the snapshot: relative, `/`-separated, no
/// empty, `.` (dropped) or `..` components, no characters that need escaping in a URL. Pickle and code are
/// refused.
pub(super) fn repo_path(name: &str) -> std::result::Result<String, String> {
    let why = |w: &str| format!("file name `{}` {w}", clip(name));
    if name.starts_with('/') || name.starts_with('\\') || name.contains('\\') {
        return Err(why(
            "is absolute or uses `\\`; files must lie in the snapshot",
        ));
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "." => {}
            ".." => return Err(why("has a `..` component; files must lie in the snapshot")),
            "" => return Err(why("has an empty component")),
            p => parts.push(p),
        }
    }
    let path = parts.join("/");
    if path.is_empty() {
        return Err(why("names no file"));
    }
    if path.len() > 1024
        || !path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+=@,~/".contains(&b))
    {
        return Err(why("has characters provsearch does not request"));
    }
    if has_extension(&path, REFUSED_EXTENSIONS) {
        return Err(why("is pickle or code, which is never downloaded"));
    }
    Ok(path)
}

/// What to download, from the listing: metadata files, then the index (if any), then the weights.
#[derive(Debug, PartialEq)]
pub(super) struct Plan {
    pub(super) metadata: Vec<String>,
    pub(super) index: Option<String>,
    pub(super) weights: Vec<String>,
}

pub(super) fn plan(
    id: &str,
    siblings: &[String],
    selection: Option<&str>,
) -> std::result::Result<Plan, String> {
    let listed = |name: &str| siblings.iter().any(|s| s == name);
    // Plus any other top-level tiktoken ranks file, which the tokenizer reader takes when nothing else exists
    // (names from the listing: checked like weight names).
    let other_ranks = siblings
        .iter()
        .filter(|s| s.ends_with(".tiktoken") && !METADATA_FILES.contains(&s.as_str()))
        .filter_map(|s| repo_path(s).ok())
        .filter(|s| !s.contains('/'));
    let metadata = METADATA_FILES
        .iter()
        .filter(|f| listed(f))
        .map(|f| f.to_string())
        .chain(other_ranks)
        .collect();
    if let Some(file) = selection {
        let path = repo_path(file)?;
        if !has_extension(&path, &["gguf", "safetensors"]) {
            return Err(format!(
                "`{}` is not a .gguf or .safetensors file",
                clip(file)
            ));
        }
        let weights = model_files(&path);
        if let Some(missing) = weights.iter().find(|w| !listed(w)) {
            return Err(format!("the repository does not list `{}`", clip(missing)));
        }
        return Ok(Plan {
            metadata,
            index: None,
            weights,
        });
    }
    let top: Vec<&String> = {
        let mut top: Vec<&String> = siblings.iter().filter(|s| !s.contains('/')).collect();
        top.sort();
        top
    };
    let of_kind = |ext: &str| -> Vec<String> {
        top.iter()
            .filter(|s| has_extension(s, &[ext]))
            .map(|s| s.to_string())
            .collect()
    };
    let (index, weights) = if listed(INDEX_FILE) {
        (Some(INDEX_FILE.to_string()), Vec::new())
    } else if listed("model.safetensors") {
        (None, vec!["model.safetensors".to_string()])
    } else if !of_kind("safetensors").is_empty() {
        // As `locate` reads them: Mistral's consolidated copy only when there is nothing else.
        let all = of_kind("safetensors");
        let native = |s: &String| is_native_weight_file(Path::new(s));
        if all.iter().all(native) {
            (None, all)
        } else {
            (None, all.into_iter().filter(|s| !native(s)).collect())
        }
    } else if !of_kind("gguf").is_empty() {
        let mut models: Vec<Vec<String>> = Vec::new();
        for name in of_kind("gguf") {
            let files = model_files(&name);
            if !models.contains(&files) {
                models.push(files);
            }
        }
        if models.len() > 1 {
            let names: Vec<&str> = models.iter().map(|m| m[0].as_str()).collect();
            return Err(format!(
                "the repository holds {} GGUF models ({}); name one, as `{id}:{}`",
                models.len(),
                clip(&names.join(", ")),
                names[0]
            ));
        }
        (None, models.swap_remove(0))
    } else if let Some(pickle) = siblings
        .iter()
        .find(|s| has_extension(s, PICKLE_EXTENSIONS))
    {
        return Err(format!(
            "the repository has only PyTorch pickle weights (`{}`), which provsearch never downloads or \
             opens (pickle can run code when loaded); use a copy with safetensors weights",
            clip(pickle)
        ));
    } else {
        return Err("the repository lists no .safetensors or .gguf weights".into());
    };
    Ok(Plan {
        metadata,
        index,
        weights,
    })
}

/// The shard names of a downloaded index, checked: safe paths, `.safetensors`, listed in the repository.
pub(super) fn shards_of_index(
    index: &Path,
    siblings: &[String],
) -> std::result::Result<Vec<String>, String> {
    let text =
        std::fs::read(index).map_err(|e| format!("cannot read the downloaded index: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("the index is not JSON: {e}"))?;
    let map = value
        .get("weight_map")
        .and_then(serde_json::Value::as_object)
        .ok_or("the index has no `weight_map` object")?;
    let mut shards = Vec::new();
    for (tensor, shard) in map {
        let shard = shard
            .as_str()
            .ok_or_else(|| format!("tensor `{}` maps to a non-string", clip(tensor)))?;
        let path = repo_path(shard).map_err(|e| format!("unsafe shard: {e}"))?;
        if !has_extension(&path, &["safetensors"]) {
            return Err(format!(
                "shard `{}` is not a .safetensors file",
                clip(shard)
            ));
        }
        if !siblings.contains(&path) {
            return Err(format!(
                "the index names shard `{}`, which the repository does not list",
                clip(shard)
            ));
        }
        if !shards.contains(&path) {
            shards.push(path);
        }
    }
    if shards.is_empty() {
        return Err("the index names no shard".into());
    }
    shards.sort();
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn repo_paths_stay_in_the_snapshot() {
        assert_eq!(repo_path("model.safetensors").unwrap(), "model.safetensors");
        assert_eq!(
            repo_path("./sub/m.safetensors").unwrap(),
            "sub/m.safetensors"
        );
        for bad in [
            "../x.safetensors",
            "a/../../x.safetensors",
            "/etc/passwd",
            "\\\\host\\x",
            "a\\..\\x",
            "a//b",
            "",
            ".",
            "we ird.safetensors",
            "x.safetensors?y",
            "pytorch_model.bin",
            "modeling.py",
        ] {
            assert!(repo_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mistral_consolidated_weights_only_when_alone() {
        let p = plan(
            "mistralai/x",
            &names(&[
                "consolidated.safetensors",
                "params.json",
                "model-00001-of-00001.safetensors",
                "config.json",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(p.weights, names(&["model-00001-of-00001.safetensors"]));
        let p = plan(
            "mistralai/x",
            &names(&["consolidated.safetensors", "params.json", "tekken.json"]),
            None,
        )
        .unwrap();
        assert_eq!(p.weights, names(&["consolidated.safetensors"]));
        assert_eq!(p.metadata, names(&["tekken.json", "params.json"]));
    }

    #[test]
    fn plans_follow_locate_and_skip_pickle() {
        let plan = |list: &[&str]| plan("o/n", &names(list), None);
        let p = plan(&[
            "config.json",
            "pytorch_model.bin",
            "model.safetensors",
            "modeling_x.py",
            "tokenizer.json",
            "onnx/model.onnx",
        ])
        .unwrap();
        assert_eq!(p.metadata, names(&["config.json", "tokenizer.json"]));
        assert_eq!(p.weights, names(&["model.safetensors"]));
        assert_eq!(p.index, None);

        // Tokenizer files of every kind the reader takes, never one in a folder.
        let p = plan(&[
            "model.safetensors",
            "spm.model",
            "tekken.json",
            "o200k.tiktoken",
            "original/tokenizer.model",
            "sub/x.tiktoken",
            "a\\b.tiktoken",
        ])
        .unwrap();
        assert_eq!(
            p.metadata,
            names(&["spm.model", "tekken.json", "o200k.tiktoken"])
        );

        let p = plan(&[INDEX_FILE, "model-00001-of-00002.safetensors"]).unwrap();
        assert_eq!(p.index.as_deref(), Some(INDEX_FILE));

        let p = plan(&["m.Q8_0.gguf", "sub/0.gguf", "README.md"]).unwrap();
        assert_eq!(p.weights, names(&["m.Q8_0.gguf"]));
        assert_eq!(p.metadata, names(&["README.md"]));
        let split = ["m-00002-of-00002.gguf", "m-00001-of-00002.gguf"];
        assert_eq!(
            plan(&split).unwrap().weights,
            names(&["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"])
        );
        let e = plan(&["b.Q8_0.gguf", "a.Q4_K_M.gguf"]).unwrap_err();
        assert!(
            e.contains("2 GGUF models") && e.contains("`o/n:a.Q4_K_M.gguf`"),
            "{e}"
        );
        let both = ["b.Q8_0.gguf", "a.Q4_K_M.gguf", "config.json"];
        let p = super::plan("o/n", &names(&both), Some("b.Q8_0.gguf")).unwrap();
        assert_eq!(p.weights, names(&["b.Q8_0.gguf"]));
        assert!(super::plan("o/n", &names(&both), Some("c.gguf")).is_err());
        assert!(super::plan("o/n", &names(&split), Some("m-00001-of-00003.gguf")).is_err());
        // A split model in a folder of the repository: every part, in that folder.
        let sub = ["sub/m-00001-of-00002.gguf", "sub/m-00002-of-00002.gguf"];
        let p = super::plan("o/n", &names(&sub), Some("sub/m-00002-of-00002.gguf")).unwrap();
        assert_eq!(p.weights, names(&sub));
        assert!(super::plan("o/n", &names(&both), Some("config.json")).is_err());

        let e = plan(&["config.json", "pytorch_model.bin"]).unwrap_err();
        assert!(
            e.contains("pytorch_model.bin") && e.contains("pickle"),
            "{e}"
        );
        let e = plan(&["config.json"]).unwrap_err();
        assert!(e.contains("no .safetensors or .gguf"), "{e}");
    }

    #[test]
    fn shard_names_are_confined_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join(INDEX_FILE);
        let listed = names(&["a.safetensors", "b.safetensors", "x.bin"]);
        let shards = |map: &str| {
            std::fs::write(&index, format!(r#"{{"weight_map": {map}}}"#)).unwrap();
            shards_of_index(&index, &listed)
        };
        assert_eq!(
            shards(r#"{"t1": "b.safetensors", "t2": "a.safetensors", "t3": "b.safetensors"}"#)
                .unwrap(),
            names(&["a.safetensors", "b.safetensors"])
        );
        assert!(shards(r#"{"t": "../a.safetensors"}"#)
            .unwrap_err()
            .contains(".."));
        assert!(shards(r#"{"t": "/a.safetensors"}"#)
            .unwrap_err()
            .contains("absolute"));
        assert!(shards(r#"{"t": "x.bin"}"#).unwrap_err().contains("pickle"));
        assert!(shards(r#"{"t": "c.safetensors"}"#)
            .unwrap_err()
            .contains("does not list"));
        assert!(shards(r#"{}"#).unwrap_err().contains("no shard"));
        assert!(shards(r#"[]"#).unwrap_err().contains("weight_map"));
    }
}
