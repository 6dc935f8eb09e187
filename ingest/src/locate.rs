//! Where a model's files are: a local snapshot directory, a single weight file, or a Hub id resolved in the
//! local Hugging Face cache (`models--org--name/snapshots/<commit>/`, `refs/<branch>`), never over the network.

use crate::digest::recorded_commit;
use crate::error::{Error, Result};
use provsearch_formats::gguf::split::SplitName;
use provsearch_formats::safetensors::ShardIndex;
use provsearch_formats::Error as FormatError;
use provsearch_index::schema::SourceFormat;
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// A model's files on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelLocation {
    /// Model id: `org/name` for cache entries, the directory or file name otherwise.
    pub id: String,
    /// Commit of a cache snapshot, or of a `--local-dir` download whose weight files are unchanged since
    /// (from their download records, [`recorded_commit`]), when known.
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

/// The config file of Mistral's (and Meta's) native layout, read when a snapshot has no config.json.
pub const NATIVE_PARAMS: &str = "params.json";

/// Whether a weight file is in Mistral's native layout (`consolidated.safetensors`,
/// `consolidated-00001-of-00002.safetensors`), which many Mistral repos ship beside the Hugging Face shards.
pub fn is_native_weight_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("consolidated") && has_extension(path, "safetensors"))
}

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

/// The format of a weight file whose name does not say (Ollama keeps GGUF models as `blobs/sha256-…`), from
/// its first bytes: GGUF's magic, or safetensors' 8-byte header length followed by `{`. A PyTorch checkpoint
/// (a zip archive or a bare pickle stream) is refused like a `.bin`, anything else is not a weight file.
fn sniff_format(path: &Path) -> Result<SourceFormat> {
    use std::io::Read;
    let mut head = Vec::with_capacity(9);
    std::fs::File::open(path)
        .and_then(|f| f.take(9).read_to_end(&mut head))
        .map_err(|e| FormatError::io(path, e))?;
    match head.as_slice() {
        h if h.starts_with(&provsearch_formats::gguf::MAGIC) => Ok(SourceFormat::Gguf),
        [_, _, _, _, _, _, _, _, b'{'] => Ok(SourceFormat::Safetensors),
        [b'P', b'K', 3, 4, ..] | [0x80, 2..=5, ..] => Err(refuse_pickle(path)),
        _ => Err(Error::no_weights(
            path,
            "neither its name (.safetensors, .gguf) nor its first bytes say safetensors or GGUF",
        )),
    }
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

/// The GGUF models among a directory's files (sorted), each as (name, files): a `.gguf` file on its own, named
/// by its stem, except the parts of a model split by gguf-split (`<prefix>-00001-of-00003.gguf`, ...), which
/// form one model named by the prefix, with every part's path in order (present or not: opening reports a
/// missing part).
///
/// Names are unique. When several models would share one (`x.gguf` beside the parts `x-00001-of-00002.gguf`,
/// or two split models with the same prefix and different part counts), each split model among them is named
/// by its first part's stem instead (`x-00001-of-00002`); files whose stems still coincide (`x.gguf` and
/// `x.GGUF`) are named by their file names.
pub fn gguf_models(dir: &Path, files: &[PathBuf]) -> Vec<(String, Vec<PathBuf>)> {
    let mut models: Vec<(String, Vec<PathBuf>, Option<SplitName>)> = Vec::new();
    let mut splits = HashSet::new();
    for file in files.iter().filter(|p| has_extension(p, "gguf")) {
        match SplitName::parse(&name_of(file)) {
            Some(split) => {
                if splits.insert((split.prefix.clone(), split.count)) {
                    models.push((split.prefix.clone(), split.part_paths(dir), Some(split)));
                }
            }
            None => models.push((stem_of(file), vec![file.clone()], None)),
        }
    }
    let shared = |models: &[(String, Vec<PathBuf>, Option<SplitName>)], name: &str| {
        models.iter().filter(|m| m.0 == name).count() > 1
    };
    let names: Vec<String> = models
        .iter()
        .map(|(name, _, split)| match split {
            Some(split) if shared(&models, name) => split.first_stem(),
            _ => name.clone(),
        })
        .collect();
    for (model, name) in models.iter_mut().zip(names) {
        model.0 = name;
    }
    let names: Vec<String> = models
        .iter()
        .map(|(name, files, split)| match (split, files.first()) {
            (None, Some(file)) if shared(&models, name) => name_of(file),
            _ => name.clone(),
        })
        .collect();
    models
        .into_iter()
        .zip(names)
        .map(|((_, files, _), name)| (name, files))
        .collect()
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every model in a snapshot directory: the safetensors model (one file or the shards of an index), then
/// each GGUF model ([`gguf_models`]). A directory holding one model gives it the id `id`. A directory
/// holding several (several GGUF files, or safetensors and GGUF) gives the safetensors model `id` and each
/// GGUF model `<id>/<name>`, its name being the file stem or the split prefix (`org/name/model-Q4_K_M`).
pub fn locate_directory_models(
    dir: &Path,
    id: String,
    revision: Option<String>,
) -> Result<Vec<ModelLocation>> {
    let files = list_dir(dir)?;
    let index = dir.join("model.safetensors.index.json");
    let mut models = Vec::new();
    if index.exists() || files.iter().any(|p| has_extension(p, "safetensors")) {
        let weight_files = if index.exists() {
            ShardIndex::load(&index)?.shards
        } else if dir.join("model.safetensors").exists() {
            vec![dir.join("model.safetensors")]
        } else {
            let all: Vec<PathBuf> = files
                .iter()
                .filter(|p| has_extension(p, "safetensors"))
                .cloned()
                .collect();
            // The same weights in Mistral's native layout beside HF shards (no index): read the HF ones only,
            // or every tensor would be there twice under two naming schemes.
            if all.iter().any(|p| !is_native_weight_file(p)) {
                all.into_iter()
                    .filter(|p| !is_native_weight_file(p))
                    .collect()
            } else {
                all
            }
        };
        models.push(ModelLocation {
            id: id.clone(),
            revision: revision.clone().or_else(|| recorded_commit(&weight_files)),
            root: dir.to_path_buf(),
            weight_files,
            format: SourceFormat::Safetensors,
            is_directory: true,
        });
    }
    let ggufs = gguf_models(dir, &files);
    let several = models.len() + ggufs.len() > 1;
    for (name, weight_files) in ggufs {
        models.push(ModelLocation {
            id: if several {
                format!("{id}/{name}")
            } else {
                id.clone()
            },
            revision: revision.clone().or_else(|| recorded_commit(&weight_files)),
            root: dir.to_path_buf(),
            weight_files,
            format: SourceFormat::Gguf,
            is_directory: true,
        });
    }
    if models.is_empty() {
        if let Some(pickle) = files
            .iter()
            .find(|p| PICKLE_EXTENSIONS.iter().any(|e| has_extension(p, e)))
        {
            return Err(refuse_pickle(pickle));
        }
        return Err(Error::no_weights(
            dir,
            "no .safetensors or .gguf file in the directory",
        ));
    }
    Ok(models)
}

/// Locate the one model a snapshot directory stands for: its safetensors model when it has one, else its
/// only GGUF model. Several GGUF models and no safetensors is an error that lists them: name one as
/// `DIR/FILE.gguf` (or `org/name[@revision]:FILE.gguf` for a Hub id).
pub fn locate_directory(dir: &Path, id: String, revision: Option<String>) -> Result<ModelLocation> {
    let mut models = locate_directory_models(dir, id, revision)?;
    if models.len() == 1 || models[0].format == SourceFormat::Safetensors {
        return Ok(models.swap_remove(0));
    }
    let files: Vec<String> = models
        .iter()
        .filter_map(|m| m.weight_files.first().map(|f| name_of(f)))
        .collect();
    // For a Hub id, the file's path inside the snapshot.
    let (hub, folder) = in_cache_snapshot(dir).map_or_else(
        || ("org/name[@revision]".to_string(), String::new()),
        |(id, _, sub)| (id, if sub.is_empty() { sub } else { sub + "/" }),
    );
    Err(Error::no_weights(
        dir,
        format!(
            "the directory holds {} GGUF models ({}); name one file, as `{}` or, for a Hub id, `{hub}:{folder}{}`",
            files.len(),
            files.join(", "),
            dir.join(&files[0]).display(),
            files[0]
        ),
    ))
}

/// A directory's id: `org/name` and the commit for a Hugging Face cache snapshot, `org/name/<folder>` and the
/// commit for a folder inside one (`org/name/Q4_K_M`), else its name.
fn directory_id(dir: &Path) -> (String, Option<String>) {
    match in_cache_snapshot(dir) {
        Some((id, commit, sub)) if sub.is_empty() => (id, Some(commit)),
        Some((id, commit, sub)) => (format!("{id}/{sub}"), Some(commit)),
        None => (name_of(dir), None),
    }
}

/// Every model at a local path: [`locate_directory_models`] for a directory (a cache repo folder
/// `models--org--name` stands for its `refs/main` snapshot), [`locate_path`] for a file.
pub fn locate_all(path: &Path) -> Result<Vec<ModelLocation>> {
    if path.is_dir() {
        let dir = resolve_cache_repo_dir(path).unwrap_or_else(|| path.to_path_buf());
        let (id, revision) = directory_id(&dir);
        return locate_directory_models(&dir, id, revision);
    }
    Ok(vec![locate_path(path)?])
}

/// Locate a model given as a local path (directory or file).
pub fn locate_path(path: &Path) -> Result<ModelLocation> {
    let path = if path.is_dir() {
        resolve_cache_repo_dir(path).unwrap_or_else(|| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    if path.is_dir() {
        let (id, revision) = directory_id(&path);
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
        sniff_format(&path)?
    };
    let root = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if format == SourceFormat::Gguf {
        return locate_gguf_file(&path, root);
    }
    let stem = stem_of(&path);
    let id = if stem == "model" {
        name_of(&root.canonicalize().unwrap_or(root.clone()))
    } else {
        stem
    };
    Ok(ModelLocation {
        id,
        revision: recorded_commit(std::slice::from_ref(&path)),
        root,
        weight_files: vec![path],
        format,
        is_directory: false,
    })
}

/// A `.gguf` file named directly: with the other parts of its gguf-split model, if it is one. In a model
/// directory (a Hugging Face cache snapshot or a folder of one, or a directory with config.json) its id is the
/// one the directory gives it ([`locate_directory_models`]: `org/name`, or `org/name/<name>` beside other
/// models; `org/name/<folder>[/<name>]` in a folder of a snapshot), so that a file and its ingested directory
/// agree. Elsewhere the id is its name among the directory's GGUF models ([`gguf_models`]: the file stem or
/// the split prefix, unless another model there has the same; the directory name for `model.gguf`).
fn locate_gguf_file(path: &Path, root: PathBuf) -> Result<ModelLocation> {
    let (name, weight_files) = match SplitName::parse(&name_of(path)) {
        Some(split) => (split.prefix.clone(), split.part_paths(&root)),
        None => (stem_of(path), vec![path.to_path_buf()]),
    };
    let snapshot = in_cache_snapshot(&root);
    if snapshot.is_some() || root.join("config.json").is_file() {
        let (dir_id, revision) = directory_id(&root);
        // A directory that cannot be listed as models (a broken shard index, say) leaves the file on its own.
        let found = locate_directory_models(&root, dir_id, revision)
            .ok()
            .and_then(|models| {
                models
                    .into_iter()
                    .find(|m| m.weight_files.first() == weight_files.first())
            });
        if let Some(mut model) = found {
            model.is_directory = false;
            return Ok(model);
        }
    }
    let name = list_dir(&root)
        .ok()
        .and_then(|files| {
            gguf_models(&root, &files)
                .into_iter()
                .find(|(_, files)| files.first() == weight_files.first())
        })
        .map_or(name, |(unique, _)| unique);
    let id = if name == "model" {
        name_of(&root.canonicalize().unwrap_or(root.clone()))
    } else {
        name
    };
    Ok(ModelLocation {
        id,
        revision: recorded_commit(&weight_files),
        root,
        weight_files,
        format: SourceFormat::Gguf,
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

/// `org/name[@revision]:FILE` → (`org/name[@revision]`, `FILE`): one file of a Hub repo, for repos that ship
/// several GGUF models. `FILE` is a path relative to the snapshot.
pub fn file_selector(spec: &str) -> Option<(&str, &str)> {
    let (repo, file) = spec.split_once(':')?;
    (!file.is_empty() && looks_like_hub_id(repo)).then_some((repo, file))
}

/// A Hub model: `org/name[@revision]` → (it, no file); `org/name[@revision]:FILE` → (`org/name[@revision]`,
/// `FILE`) ([`file_selector`]); anything else → `None`. A `:` cannot appear in a Git revision, so it always
/// starts the file.
pub fn hub_spec(spec: &str) -> Option<(&str, Option<&str>)> {
    if spec.contains(':') {
        return file_selector(spec).map(|(repo, file)| (repo, Some(file)));
    }
    looks_like_hub_id(spec).then_some((spec, None))
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

/// `org/name[@revision]` → (`org/name`, revision), the revision defaulting to `main`.
pub fn split_hub_spec(spec: &str) -> (&str, &str) {
    match spec.split_once('@') {
        Some((id, rev)) if !rev.is_empty() => (id, rev),
        _ => (spec.trim_end_matches('@'), "main"),
    }
}

/// Resolve `org/name[@revision]` in the cache at `cache_dir`.
pub fn locate_in_cache(spec: &str, cache_dir: &Path) -> Result<ModelLocation> {
    let (id, commit, snapshot) = snapshot_in_cache(spec, cache_dir)?;
    locate_directory(&snapshot, id, Some(commit))
}

/// Resolve `org/name[@revision]:FILE` in the cache at `cache_dir`: one file of the snapshot.
pub fn locate_file_in_cache(spec: &str, cache_dir: &Path) -> Result<ModelLocation> {
    let (repo, file) = file_selector(spec).ok_or_else(|| Error::NotFound {
        spec: spec.to_string(),
        detail: "not of the form org/name[@revision]:FILE".into(),
    })?;
    let (_, _, snapshot) = snapshot_in_cache(repo, cache_dir)?;
    let relative = Path::new(file);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(Error::NotFound {
            spec: spec.to_string(),
            detail: format!("`{file}` is not a path inside the snapshot"),
        });
    }
    let path = snapshot.join(relative);
    if !path.is_file() {
        let available: Vec<String> = list_dir(&snapshot)?
            .iter()
            .filter(|p| has_extension(p, "gguf") || has_extension(p, "safetensors"))
            .map(|p| name_of(p))
            .collect();
        return Err(Error::NotFound {
            spec: spec.to_string(),
            detail: format!(
                "no file `{file}` in {} (weight files there: {})",
                snapshot.display(),
                if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join(", ")
                }
            ),
        });
    }
    locate_path(&path)
}

/// `org/name[@revision]` → (`org/name`, commit, snapshot directory) in the cache at `cache_dir`.
fn snapshot_in_cache(spec: &str, cache_dir: &Path) -> Result<(String, String, PathBuf)> {
    let (id, revision) = split_hub_spec(spec);
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
            "{} is not in the Hugging Face cache ({}); pass --download to fetch it from the Hub, \
             download it first (e.g. `huggingface-cli download {id}`), or pass a local path",
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
                    "no revision `{revision}` in {} (--download fetches it from the Hub)",
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
    Ok((id.to_string(), commit, snapshot))
}

/// `…/models--org--name` → its `refs/main` snapshot, when given the repo folder itself.
fn resolve_cache_repo_dir(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_str()?;
    name.strip_prefix("models--")?;
    let commit = std::fs::read_to_string(dir.join("refs").join("main")).ok()?;
    let snapshot = dir.join("snapshots").join(commit.trim());
    snapshot.is_dir().then_some(snapshot)
}

/// A directory in a Hugging Face cache snapshot (the snapshot itself or a folder of it):
/// `…/models--org--name/snapshots/<commit>/<folder>` → (`org/name`, commit, `<folder>`, `/`-separated and empty
/// for the snapshot itself).
fn in_cache_snapshot(dir: &Path) -> Option<(String, String, String)> {
    let mut folders = Vec::new();
    for ancestor in dir.ancestors() {
        if let Some((id, commit)) = cache_id_of_snapshot(ancestor) {
            folders.reverse();
            return Some((id, commit, folders.join("/")));
        }
        folders.push(ancestor.file_name()?.to_str()?);
    }
    None
}

/// `…/models--org--name/snapshots/<commit>` → (`org/name`, commit).
fn cache_id_of_snapshot(dir: &Path) -> Option<(String, String)> {
    let commit = dir.file_name()?.to_str()?;
    let snapshots = dir.parent()?;
    if snapshots.file_name()? != "snapshots" {
        return None;
    }
    let repo = snapshots.parent()?.file_name()?.to_str()?;
    let id = repo.strip_prefix("models--")?.replacen("--", "/", 1);
    Some((id, commit.to_string()))
}

/// Locate a model named by a path, or by a Hub id looked up in the cache.
pub fn locate(spec: &str, cache_dir: Option<&Path>) -> Result<ModelLocation> {
    let path = Path::new(spec);
    if path.exists() {
        return locate_path(path);
    }
    match hub_spec(spec) {
        Some((_, Some(_))) => return locate_file_in_cache(spec, &hf_cache_dir(cache_dir)),
        Some((_, None)) => return locate_in_cache(spec, &hf_cache_dir(cache_dir)),
        None => {}
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
        assert_eq!(
            file_selector("org/name@v1:sub/x.gguf"),
            Some(("org/name@v1", "sub/x.gguf"))
        );
        assert_eq!(file_selector("org/name:"), None);
        assert_eq!(file_selector("a/b/c:x.gguf"), None);
        assert_eq!(hub_spec("org/name@v1"), Some(("org/name@v1", None)));
        assert_eq!(
            hub_spec("org/name:sub/x.gguf"),
            Some(("org/name", Some("sub/x.gguf")))
        );
        assert_eq!(hub_spec("org/name@v1:"), None);
        assert_eq!(hub_spec("a/b/c:x.gguf"), None);
    }

    #[test]
    fn gguf_model_names_are_unique_in_a_directory() {
        let dir = Path::new("d");
        let mut files: Vec<PathBuf> = [
            "x.gguf",
            "x-00002-of-00002.gguf",
            "x-00001-of-00002.gguf",
            "x-00001-of-00003.gguf",
            "y.gguf",
            "y.GGUF",
            "z-00002-of-00002.gguf",
            "w.gguf",
            "README.md",
        ]
        .iter()
        .map(|f| dir.join(f))
        .collect();
        files.sort();
        let models = gguf_models(dir, &files);
        let names: Vec<(&str, usize)> = models
            .iter()
            .map(|(name, files)| (name.as_str(), files.len()))
            .collect();
        assert_eq!(
            names,
            [
                ("w", 1),
                ("x-00001-of-00002", 2),
                ("x-00001-of-00003", 3),
                ("x", 1),
                ("y.GGUF", 1),
                ("y.gguf", 1),
                ("z", 2),
            ]
        );
        assert_eq!(models[2].1[2], dir.join("x-00003-of-00003.gguf"));
    }

    #[test]
    fn folders_of_cache_snapshots_keep_the_hub_id() {
        let snapshot = Path::new("/c/hub/models--org--name/snapshots/abc");
        assert_eq!(
            in_cache_snapshot(snapshot),
            Some(("org/name".into(), "abc".into(), String::new()))
        );
        assert_eq!(
            in_cache_snapshot(&snapshot.join("Q4_K_M/more")),
            Some(("org/name".into(), "abc".into(), "Q4_K_M/more".into()))
        );
        assert_eq!(
            directory_id(&snapshot.join("Q4_K_M")),
            ("org/name/Q4_K_M".to_string(), Some("abc".to_string()))
        );
        assert_eq!(in_cache_snapshot(Path::new("/c/hub/elsewhere/x")), None);
        assert_eq!(in_cache_snapshot(Path::new("x")), None);
    }
}
