//! Where a model's files are: a local snapshot directory, a single weight file, or a Hub id resolved in the
//! local Hugging Face cache (`models--org--name/snapshots/<commit>/`, `refs/<branch>`), never over the network.

use crate::error::{Error, Result};
use provsearch_formats::safetensors::ShardIndex;
use provsearch_formats::Error as FormatError;
use provsearch_index::schema::SourceFormat;
use std::path::{Path, PathBuf};

/// A model's files on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelLocation {
    /// Model id: `org/name` for cache entries, the directory or file name otherwise.
    pub id: String,
    /// Commit of a cache snapshot, when known.
    pub revision: Option<String>,
    /// Directory holding config.json, tokenizer files and README.md.
    pub root: PathBuf,
    /// Weight files, sorted.
    pub weight_files: Vec<PathBuf>,
    /// Their format.
    pub format: SourceFormat,
    /// Whether the model was named as a directory (then config.json is required).
    pub is_directory: bool,
}

const PICKLE_EXTENSIONS: &[&str] = &["bin", "pt", "pth", "ckpt", "pkl", "pickle"];

fn refuse_pickle(path: &Path) -> Error {
    FormatError::Refused {
        path: path.to_path_buf(),
        detail: "PyTorch pickle checkpoints can execute code when loaded and are never opened; \
                 use the model's safetensors weights (model.safetensors), e.g. convert with \
                 `safetensors.torch.save_file` in a sandbox"
            .into(),
    }
    .into()
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| FormatError::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Locate the weights inside a snapshot directory.
pub fn locate_directory(dir: &Path, id: String, revision: Option<String>) -> Result<ModelLocation> {
    let index = dir.join("model.safetensors.index.json");
    let weight_files = if index.exists() {
        ShardIndex::load(&index)?.shards
    } else {
        let files = list_dir(dir)?;
        let safetensors: Vec<PathBuf> = files
            .iter()
            .filter(|p| has_extension(p, "safetensors"))
            .cloned()
            .collect();
        let gguf: Vec<PathBuf> = files
            .iter()
            .filter(|p| has_extension(p, "gguf"))
            .cloned()
            .collect();
        if dir.join("model.safetensors").exists() {
            vec![dir.join("model.safetensors")]
        } else if !safetensors.is_empty() {
            safetensors
        } else if let Some(first) = gguf.first() {
            return Ok(ModelLocation {
                id,
                revision,
                root: dir.to_path_buf(),
                weight_files: vec![first.clone()],
                format: SourceFormat::Gguf,
                is_directory: true,
            });
        } else if let Some(pickle) = files
            .iter()
            .find(|p| PICKLE_EXTENSIONS.iter().any(|e| has_extension(p, e)))
        {
            return Err(refuse_pickle(pickle));
        } else {
            return Err(Error::no_weights(
                dir,
                "no .safetensors or .gguf file in the directory",
            ));
        }
    };
    Ok(ModelLocation {
        id,
        revision,
        root: dir.to_path_buf(),
        weight_files,
        format: SourceFormat::Safetensors,
        is_directory: true,
    })
}

/// Locate a model given as a local path (directory or file).
pub fn locate_path(path: &Path) -> Result<ModelLocation> {
    let path = if path.is_dir() {
        resolve_cache_repo_dir(path).unwrap_or_else(|| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    if path.is_dir() {
        let (id, revision) = cache_id_of_snapshot(&path).unwrap_or_else(|| (name_of(&path), None));
        return locate_directory(&path, id, revision);
    }
    if PICKLE_EXTENSIONS.iter().any(|e| has_extension(&path, e)) {
        return Err(refuse_pickle(&path));
    }
    let format = if has_extension(&path, "safetensors") {
        SourceFormat::Safetensors
    } else if has_extension(&path, "gguf") {
        SourceFormat::Gguf
    } else {
        return Err(Error::no_weights(&path, "not a .safetensors or .gguf file"));
    };
    let root = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id = if stem == "model" {
        name_of(&root.canonicalize().unwrap_or(root.clone()))
    } else {
        stem
    };
    Ok(ModelLocation {
        id,
        revision: None,
        root,
        weight_files: vec![path],
        format,
        is_directory: false,
    })
}

/// The Hugging Face cache directory: `explicit`, else `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`.
pub fn hf_cache_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    hf_hub::Cache::from_env().path().clone()
}

/// Whether a string looks like a Hub id `org/name[@revision]` rather than a path.
pub fn looks_like_hub_id(spec: &str) -> bool {
    let name = spec.split('@').next().unwrap_or(spec);
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Resolve `org/name[@revision]` in the cache at `cache_dir`.
pub fn locate_in_cache(spec: &str, cache_dir: &Path) -> Result<ModelLocation> {
    let (id, revision) = match spec.split_once('@') {
        Some((id, rev)) if !rev.is_empty() => (id, rev),
        _ => (spec.trim_end_matches('@'), "main"),
    };
    let repo = hf_hub::Repo::with_revision(
        id.to_string(),
        hf_hub::RepoType::Model,
        revision.to_string(),
    );
    let repo_dir = cache_dir.join(repo.folder_name());
    let not_found = |detail: String| Error::NotFound {
        spec: spec.to_string(),
        detail,
    };
    if !repo_dir.is_dir() {
        return Err(not_found(format!(
            "{} is not in the Hugging Face cache ({}); download it first (e.g. `huggingface-cli download {id}`) \
             or pass a local path",
            id,
            repo_dir.display()
        )));
    }
    let commit = if is_commit_hash(revision) && repo_dir.join("snapshots").join(revision).is_dir() {
        revision.to_string()
    } else {
        let ref_file = repo_dir.join("refs").join(revision);
        std::fs::read_to_string(&ref_file)
            .map(|s| s.trim().to_string())
            .map_err(|_| {
                not_found(format!(
                    "no revision `{revision}` in {}",
                    repo_dir.join("refs").display()
                ))
            })?
    };
    if !is_commit_hash(&commit) {
        return Err(FormatError::corrupt(
            repo_dir.join("refs").join(revision),
            "ref does not hold a commit hash",
        )
        .into());
    }
    let snapshot = repo_dir.join("snapshots").join(&commit);
    if !snapshot.is_dir() {
        return Err(not_found(format!(
            "snapshot {} is missing",
            snapshot.display()
        )));
    }
    locate_directory(&snapshot, id.to_string(), Some(commit))
}

/// `…/models--org--name` → its `refs/main` snapshot, when given the repo folder itself.
fn resolve_cache_repo_dir(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_str()?;
    name.strip_prefix("models--")?;
    let commit = std::fs::read_to_string(dir.join("refs").join("main")).ok()?;
    let snapshot = dir.join("snapshots").join(commit.trim());
    snapshot.is_dir().then_some(snapshot)
}

/// `…/models--org--name/snapshots/<commit>` → (`org/name`, commit).
fn cache_id_of_snapshot(dir: &Path) -> Option<(String, Option<String>)> {
    let commit = dir.file_name()?.to_str()?;
    let snapshots = dir.parent()?;
    if snapshots.file_name()? != "snapshots" {
        return None;
    }
    let repo = snapshots.parent()?.file_name()?.to_str()?;
    let id = repo.strip_prefix("models--")?.replacen("--", "/", 1);
    Some((id, Some(commit.to_string())))
}

/// Locate a model named by a path, or by a Hub id looked up in the cache.
pub fn locate(spec: &str, cache_dir: Option<&Path>) -> Result<ModelLocation> {
    let path = Path::new(spec);
    if path.exists() {
        return locate_path(path);
    }
    if looks_like_hub_id(spec) {
        return locate_in_cache(spec, &hf_cache_dir(cache_dir));
    }
    Err(Error::NotFound {
        spec: spec.to_string(),
        detail: "no such file or directory, and not a Hub id".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids() {
        assert!(looks_like_hub_id("meta-llama/Llama-2-7b-hf"));
        assert!(looks_like_hub_id("org/name@v1.0"));
        assert!(!looks_like_hub_id("../x"));
        assert!(!looks_like_hub_id("a/b/c"));
        assert!(!looks_like_hub_id("plainname"));
    }
}
