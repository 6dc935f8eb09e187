//! Hub ids fetched into the local Hugging Face cache, only when asked for (`--download`): the files a
//! fingerprint reads and nothing else, through hf-hub's blocking client, so that the next run resolves the id
//! offline.
//!
//! What is fetched is chosen from the repository listing (`GET {endpoint}/api/models/{id}/revision/{rev}`):
//! - [`METADATA_FILES`]: config.json, README.md, tokenizer files and quantization declarations, when listed;
//! - the weights, chosen as [`locate_directory`](crate::locate::locate_directory) chooses them in a snapshot:
//!   model.safetensors.index.json and the shards it names, else model.safetensors, else every top-level
//!   .safetensors file, else the repository's one GGUF model (a single file, or every part of a gguf-split
//!   model). A repository with several GGUF models needs one named: `org/name[@revision]:FILE.gguf`.
//!
//! Never pickle (`*.bin`, `*.pt`, ...) or code (`*.py`), and never a name that could lead outside the cache.
//!
//! Every file is pinned to the commit the listing reports, so a branch that moves during the download cannot
//! mix two snapshots, and `refs/<revision>` is written only once every file is in: an interrupted download is
//! resumed by the next run, not taken for a complete one. hf-hub names the blob and the snapshot folder after
//! the `etag` and `x-repo-commit` headers, so each file's headers are checked here before hf-hub fetches it;
//! afterwards its size is checked, and for LFS files (whose etag is their SHA-256) the SHA-256, which the
//! cache's blob name then vouches for.

mod response;
mod select;

use crate::digest::file_sha256;
use crate::error::{Error, Result};
use crate::locate::{hf_cache_dir, hub_spec, locate_in_cache, split_hub_spec, ModelLocation};
use hf_hub::api::sync::{ApiBuilder, ApiRepo};
use hf_hub::{Cache, Repo, RepoType};
use provsearch_index::schema::SourceFormat;
use response::Probe;
use select::{model_files, plan, repo_path, shards_of_index, Plan};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use select::METADATA_FILES;

/// The Hub used when `$HF_ENDPOINT` is unset.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where to download from and into.
#[derive(Clone)]
pub struct HubOptions {
    /// Base URL of the Hub, without a trailing `/`.
    pub endpoint: String,
    /// Bearer token sent to the Hub (never to another host).
    pub token: Option<String>,
    /// The Hugging Face cache (`…/hub`) the files go into.
    pub cache_dir: PathBuf,
    /// Refuse to download (`$HF_HUB_OFFLINE`): only what the cache holds is used.
    pub offline: bool,
}

impl std::fmt::Debug for HubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubOptions")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .finish()
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The token saved by `huggingface-cli login`: `$HF_TOKEN_PATH`, else `$HF_HOME/token`, else
/// `~/.cache/huggingface/token`.
fn saved_token() -> Option<String> {
    let path = env_var("HF_TOKEN_PATH")
        .map(PathBuf::from)
        .or_else(|| env_var("HF_HOME").map(|h| Path::new(&h).join("token")))
        .or_else(|| env_var("HOME").map(|h| Path::new(&h).join(".cache/huggingface/token")))?;
    let token = std::fs::read_to_string(path).ok()?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

impl HubOptions {
    /// From the environment: `$HF_ENDPOINT` (else [`DEFAULT_ENDPOINT`]); `$HF_TOKEN`, else the token saved by
    /// `huggingface-cli login`; `$HF_HUB_OFFLINE`; and the cache `explicit_cache`, else as
    /// [`hf_cache_dir`] finds it.
    pub fn from_env(explicit_cache: Option<&Path>) -> Self {
        let endpoint = env_var("HF_ENDPOINT")
            .map(|e| e.trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let offline = env_var("HF_HUB_OFFLINE").is_some_and(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            )
        });
        HubOptions {
            endpoint,
            token: env_var("HF_TOKEN").or_else(saved_token),
            cache_dir: hf_cache_dir(explicit_cache),
            offline,
        }
    }
}

/// Progress of the file downloads; every method defaults to doing nothing (and `()` is the silent choice).
pub trait DownloadProgress {
    /// A file starts (or restarts) downloading: `size` bytes in all.
    fn start(&mut self, _file: &str, _size: u64) {}
    /// `bytes` more bytes have arrived.
    fn advance(&mut self, _bytes: u64) {}
    /// The file is complete.
    fn finish(&mut self) {}
}

impl DownloadProgress for () {}

/// hf-hub's progress callbacks, passed on.
struct Relay<'a>(&'a mut dyn DownloadProgress);

impl hf_hub::api::Progress for Relay<'_> {
    fn init(&mut self, size: usize, filename: &str) {
        self.0.start(filename, size as u64);
    }
    fn update(&mut self, size: usize) {
        self.0.advance(size as u64);
    }
    fn finish(&mut self) {
        self.0.finish();
    }
}

/// The result of [`ensure_cached`].
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The commit of the snapshot.
    pub commit: String,
    /// The snapshot directory in the cache.
    pub snapshot: PathBuf,
    /// Files downloaded now (empty when the cache already held the model).
    pub files: Vec<String>,
    /// Their bytes.
    pub bytes: u64,
}

/// Whether `spec` names a Hub model [`ensure_cached`] can fetch: `org/name[@revision]`, or one file of it as
/// `org/name[@revision]:FILE`.
pub fn is_hub_spec(spec: &str) -> bool {
    hub_spec(spec).is_some()
}

/// Make sure the Hub model `spec` (`org/name[@revision]`, or `org/name[@revision]:FILE` for one weight file
/// of a repository holding several GGUF models) is complete in the cache, downloading what is missing.
///
/// A snapshot that already resolves with its config (for safetensors) and every weight file is used as it
/// is, without contacting the network. Errors: [`Error::Download`] naming the repository (and the file) for
/// an unreachable Hub, a missing repository, revision or file, an answer outside the Hub's protocol, a
/// listing without safetensors or GGUF weights, or a shard name that is unsafe or not listed.
pub fn ensure_cached(
    spec: &str,
    options: &HubOptions,
    progress: &mut dyn DownloadProgress,
) -> Result<Fetched> {
    let (repo_spec, file) = hub_spec(spec).ok_or_else(|| Error::NotFound {
        spec: spec.to_string(),
        detail: "not a Hub id `org/name[@revision]` or `org/name[@revision]:FILE`".into(),
    })?;
    let (id, revision) = split_hub_spec(repo_spec);
    let session = Session::new(id, revision, file, options)?;
    if let Some((commit, snapshot)) = session.complete_in_cache() {
        return Ok(Fetched {
            commit,
            snapshot,
            files: Vec::new(),
            bytes: 0,
        });
    }
    if options.offline {
        return Err(session.fail(
            None,
            format!(
                "not complete in the Hugging Face cache ({}), and HF_HUB_OFFLINE forbids downloading it",
                options.cache_dir.display()
            ),
        ));
    }
    session.run(progress)
}

/// Whether a located model has its config (for safetensors) and every weight file.
fn is_complete(location: &ModelLocation) -> bool {
    let weights =
        !location.weight_files.is_empty() && location.weight_files.iter().all(|p| p.is_file());
    let config =
        location.format == SourceFormat::Gguf || location.root.join("config.json").is_file();
    weights && config
}

fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Shorten text from the network before it goes into a message.
fn clip(s: &str) -> String {
    const MAX: usize = 160;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

/// One download of one repository.
struct Session<'a> {
    id: &'a str,
    revision: &'a str,
    /// The one weight file asked for (`org/name:FILE`).
    selection: Option<&'a str>,
    options: &'a HubOptions,
    /// `…/models--org--name`.
    repo_dir: PathBuf,
    /// A client that follows no redirect, for the header checks.
    probe: ureq::Agent,
}

impl<'a> Session<'a> {
    fn new(
        id: &'a str,
        revision: &'a str,
        selection: Option<&'a str>,
        options: &'a HubOptions,
    ) -> Result<Self> {
        let session = Session {
            id,
            revision,
            selection,
            options,
            repo_dir: options
                .cache_dir
                .join(Repo::model(id.to_string()).folder_name()),
            probe: ureq::builder()
                .try_proxy_from_env(true)
                .redirects(0)
                .timeout_connect(Duration::from_secs(30))
                .timeout_read(Duration::from_secs(120))
                .build(),
        };
        // The revision becomes a file below refs/ and part of URLs.
        let safe = revision
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
            && revision
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
        if !safe {
            return Err(session.fail(
                None,
                format!(
                    "revision `{}` is not a branch, tag or commit name",
                    clip(revision)
                ),
            ));
        }
        Ok(session)
    }

    /// The snapshot `refs/<revision>` (or the commit named as revision) points to: (commit, directory).
    fn cached_snapshot(&self) -> Option<(String, PathBuf)> {
        let commit = if is_commit_hash(self.revision) {
            self.revision.to_string()
        } else {
            std::fs::read_to_string(self.repo_dir.join("refs").join(self.revision))
                .ok()?
                .trim()
                .to_string()
        };
        let snapshot = self.repo_dir.join("snapshots").join(&commit);
        (is_commit_hash(&commit) && snapshot.is_dir()).then_some((commit, snapshot))
    }

    /// The cached snapshot, when it holds what was asked for: the selected file (and its gguf-split parts),
    /// or a model that resolves with its config (for safetensors) and every weight file.
    fn complete_in_cache(&self) -> Option<(String, PathBuf)> {
        let (commit, snapshot) = self.cached_snapshot()?;
        let complete = match self.selection {
            Some(file) => {
                let path = repo_path(file).ok()?;
                model_files(&path)
                    .iter()
                    .all(|f| snapshot.join(f).is_file())
            }
            None => {
                let spec = format!("{}@{commit}", self.id);
                locate_in_cache(&spec, &self.options.cache_dir).is_ok_and(|l| is_complete(&l))
            }
        };
        complete.then_some((commit, snapshot))
    }

    fn fail(&self, file: Option<&str>, detail: String) -> Error {
        self.fail_status(file, None, detail)
    }

    fn fail_status(&self, file: Option<&str>, status: Option<u16>, detail: String) -> Error {
        Error::Download {
            repo: self.id.to_string(),
            file: file.map(str::to_string),
            status,
            detail,
        }
    }

    fn run(&self, progress: &mut dyn DownloadProgress) -> Result<Fetched> {
        let api = ApiBuilder::from_cache(Cache::new(self.options.cache_dir.clone()))
            .with_endpoint(self.options.endpoint.clone())
            .with_token(self.options.token.clone())
            .with_progress(false)
            .with_user_agent("provsearch", env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| self.api_error(None, e))?;
        let info = api
            .repo(Repo::with_revision(
                self.id.to_string(),
                RepoType::Model,
                self.revision.to_string(),
            ))
            .info()
            .map_err(|e| self.api_error(None, e))?;
        let commit = info.sha.clone();
        if !is_commit_hash(&commit) {
            return Err(self.fail(
                None,
                format!(
                    "the listing's commit `{}` is not a commit hash",
                    clip(&commit)
                ),
            ));
        }
        let siblings: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
        let plan =
            plan(self.id, &siblings, self.selection).map_err(|d| self.fail(self.selection, d))?;
        let pinned = api.repo(Repo::with_revision(
            self.id.to_string(),
            RepoType::Model,
            commit.clone(),
        ));
        // Downloads pinned to the commit make hf-hub write refs/<commit>; it goes again afterwards.
        let commit_ref = self.repo_dir.join("refs").join(&commit);
        let stray_ref = self.revision != commit && !commit_ref.exists();
        let fetched = self.fetch_plan(&pinned, &commit, &plan, &siblings, progress);
        if stray_ref {
            let _ = std::fs::remove_file(&commit_ref);
        }
        let (files, bytes) = fetched?;
        let snapshot = self.repo_dir.join("snapshots").join(&commit);
        // refs/<revision> only now that the snapshot is complete.
        if self.revision != commit {
            Cache::new(self.options.cache_dir.clone())
                .repo(Repo::with_revision(
                    self.id.to_string(),
                    RepoType::Model,
                    self.revision.to_string(),
                ))
                .create_ref(&commit)
                .map_err(|e| {
                    self.fail(None, format!("cannot write refs/{}: {e}", self.revision))
                })?;
        }
        if self.complete_in_cache().is_none() {
            // Say why, when the model does not resolve.
            let spec = format!("{}@{commit}", self.id);
            if self.selection.is_none() {
                locate_in_cache(&spec, &self.options.cache_dir)?;
            }
            return Err(self.fail(
                None,
                format!(
                    "the snapshot {} is still incomplete after the download",
                    snapshot.display()
                ),
            ));
        }
        Ok(Fetched {
            commit,
            snapshot,
            files,
            bytes,
        })
    }

    /// Download the planned files the snapshot lacks: metadata, then the index and the shards it names, or the
    /// weights. Returns the files downloaded and their bytes.
    fn fetch_plan(
        &self,
        pinned: &ApiRepo,
        commit: &str,
        plan: &Plan,
        siblings: &[String],
        progress: &mut dyn DownloadProgress,
    ) -> Result<(Vec<String>, u64)> {
        let snapshot = self.repo_dir.join("snapshots").join(commit);
        let mut files = Vec::new();
        let mut bytes = 0;
        let mut fetch = |name: &str| -> Result<()> {
            let name = repo_path(name).map_err(|d| self.fail(Some(name), d))?;
            if snapshot.join(&name).is_file() {
                return Ok(());
            }
            let probe = self.probe(&pinned.url(&name), &name, commit)?;
            let path = pinned
                .download_with_progress(&name, Relay(progress))
                .map_err(|e| self.api_error(Some(&name), e))?;
            bytes += self.verify(&name, &path, &probe)?;
            files.push(name);
            Ok(())
        };
        for name in &plan.metadata {
            fetch(name)?;
        }
        let mut weights = plan.weights.clone();
        if let Some(index) = &plan.index {
            fetch(index)?;
            weights = shards_of_index(&snapshot.join(index), siblings)
                .map_err(|d| self.fail(Some(index), d))?;
        }
        for name in &weights {
            fetch(name)?;
        }
        Ok((files, bytes))
    }

    /// Check a downloaded file's size and (for LFS files) SHA-256; a bad file is removed from the cache.
    /// Returns its size.
    fn verify(&self, name: &str, path: &Path, probe: &Probe) -> Result<u64> {
        let blob = self.repo_dir.join("blobs").join(&probe.etag);
        let discard = |detail: String| {
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_file(&blob);
            self.fail(
                Some(name),
                format!("{detail}; the file was removed from the cache"),
            )
        };
        let len = std::fs::metadata(&blob)
            .map_err(|e| {
                self.fail(
                    Some(name),
                    format!("cannot read the downloaded blob {}: {e}", blob.display()),
                )
            })?
            .len();
        if let Some(size) = probe.size {
            if len != size {
                return Err(discard(format!(
                    "received {len} bytes, the Hub announced {size}"
                )));
            }
        }
        if is_sha256_hex(&probe.etag) {
            let sha = file_sha256(&blob)?;
            if sha != probe.etag {
                return Err(discard(format!(
                    "the content's SHA-256 is {sha}, the Hub announced {}",
                    probe.etag
                )));
            }
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_specs() {
        assert_eq!(hub_spec("o/n@v1"), Some(("o/n@v1", None)));
        assert_eq!(hub_spec("o/n@v1:m.gguf"), Some(("o/n@v1", Some("m.gguf"))));
        assert_eq!(hub_spec("o/n:"), None);
        assert_eq!(hub_spec("o/n@v1:"), None);
        assert_eq!(hub_spec("./dir"), None);
        assert!(is_hub_spec("o/n:sub/m.gguf") && !is_hub_spec("a/b/c"));
        assert_eq!(model_files("m-00001-of-00002.gguf").len(), 2);
        assert_eq!(
            model_files("sub/m-00002-of-00002.gguf"),
            ["sub/m-00001-of-00002.gguf", "sub/m-00002-of-00002.gguf"]
        );
        assert_eq!(
            model_files("m-00003-of-00002.gguf"),
            ["m-00003-of-00002.gguf"]
        );
        assert_eq!(model_files("m.gguf"), ["m.gguf"]);
    }
}
