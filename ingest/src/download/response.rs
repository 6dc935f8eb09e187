//! What the Hub answers: the header checks made before hf-hub writes a file (hf-hub builds cache paths from
//! them), and HTTP and hf-hub errors turned into [`Error::Download`] messages that say what to do.

use super::{clip, Session};
use crate::error::{Error, Result};
use hf_hub::api::sync::ApiError;

/// What a file's headers say before hf-hub fetches it.
pub(super) struct Probe {
    /// Blob name (quotes removed).
    pub(super) etag: String,
    /// Size in bytes, when the answer tells it.
    pub(super) size: Option<u64>,
}

impl Session<'_> {
    /// Request `url` as hf-hub will (first byte only, relative redirects followed) and check the headers hf-hub
    /// builds cache paths from.
    pub(super) fn probe(&self, url: &str, name: &str, commit: &str) -> Result<Probe> {
        let origin = origin_of(&self.options.endpoint);
        let mut url = url.to_string();
        for _ in 0..5 {
            let mut request = self.probe.get(&url).set("Range", "bytes=0-0").set(
                "User-Agent",
                concat!("provsearch/", env!("CARGO_PKG_VERSION")),
            );
            if let Some(token) = &self.options.token {
                request = request.set("Authorization", &format!("Bearer {token}"));
            }
            let response = request
                .call()
                .map_err(|e| self.request_error(Some(name), e))?;
            let status = response.status();
            let redirect = (300..400).contains(&status);
            if redirect {
                let location = response.header("Location").ok_or_else(|| {
                    self.fail(
                        Some(name),
                        format!("the Hub answered HTTP {status} without a Location"),
                    )
                })?;
                // Relative redirects (renamed repositories) are followed, as hf-hub does; an absolute one is
                // the file's storage, which hf-hub fetches itself.
                if location.starts_with('/') && !location.starts_with("//") {
                    url = format!("{origin}{location}");
                    continue;
                }
            }
            let served_commit = response.header("x-repo-commit").unwrap_or("");
            if served_commit != commit {
                return Err(self.fail(
                    Some(name),
                    format!(
                        "the Hub serves it from commit `{}`, not from the listed `{commit}` (is HF_ENDPOINT a \
                         Hugging Face Hub?)",
                        clip(served_commit)
                    ),
                ));
            }
            let etag = response
                .header("x-linked-etag")
                .or_else(|| response.header("etag"))
                .ok_or_else(|| self.fail(Some(name), "the Hub's answer has no etag".into()))?
                .replace('"', "");
            let blob = etag.strip_prefix("W/").unwrap_or(&etag);
            if blob.is_empty()
                || blob.len() > 128
                || blob.starts_with('.')
                || !blob
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(self.fail(
                    Some(name),
                    format!(
                        "the Hub's etag `{}` cannot name a file in the cache",
                        clip(&etag)
                    ),
                ));
            }
            let size = if redirect {
                response
                    .header("x-linked-size")
                    .and_then(|s| s.trim().parse().ok())
            } else {
                let range = response.header("Content-Range").ok_or_else(|| {
                    self.fail(
                        Some(name),
                        format!("the Hub answered a range request with HTTP {status} and no Content-Range"),
                    )
                })?;
                Some(
                    range
                        .rsplit('/')
                        .next()
                        .and_then(|s| s.trim().parse().ok())
                        .ok_or_else(|| {
                            self.fail(Some(name), format!("bad Content-Range `{}`", clip(range)))
                        })?,
                )
            };
            return Ok(Probe { etag, size });
        }
        Err(self.fail(Some(name), "too many redirects".into()))
    }

    pub(super) fn api_error(&self, file: Option<&str>, e: ApiError) -> Error {
        let endpoint = &self.options.endpoint;
        match e {
            ApiError::RequestError(e) => self.request_error(file, *e),
            ApiError::MissingHeader(h) | ApiError::InvalidHeader(h) => self.fail(
                file,
                format!("the answer of {endpoint} lacks a valid `{h}` header (is it a Hugging Face Hub?)"),
            ),
            ApiError::IoError(e) if file.is_none() => {
                self.fail(None, format!("the listing from {endpoint} is not valid: {e}"))
            }
            ApiError::IoError(e) => self.fail(
                file,
                format!("I/O error while downloading into {}: {e}", self.repo_dir.display()),
            ),
            ApiError::LockAcquisition(p) => self.fail(
                file,
                format!("another process is downloading into {}; try again when it is done", p.display()),
            ),
            ApiError::InvalidResume => self.fail(
                file,
                format!("a partial download (`.part` in {}) is longer than the file; delete it", self.repo_dir.join("blobs").display()),
            ),
            other => self.fail(file, other.to_string()),
        }
    }

    pub(super) fn request_error(&self, file: Option<&str>, e: ureq::Error) -> Error {
        let endpoint = &self.options.endpoint;
        let (id, revision) = (self.id, self.revision);
        match e {
            ureq::Error::Transport(t) => self.fail(file, format!("cannot reach {endpoint}: {t}")),
            ureq::Error::Status(code, response) => {
                let kind = response.header("x-error-code").unwrap_or("").to_string();
                let said = response
                    .header("x-error-message")
                    .map(|m| format!(" (the Hub says: {})", clip(m)))
                    .unwrap_or_default();
                let detail = match (code, kind.as_str(), file) {
                    (_, "RevisionNotFound", _) => {
                        format!("`{id}` has no revision `{revision}` at {endpoint} (HTTP {code}){said}")
                    }
                    (_, "GatedRepo", _) | (403, _, _) => format!(
                        "access to `{id}` is refused (HTTP {code}): it is gated or private; accept its terms on \
                         the Hub and set HF_TOKEN{said}"
                    ),
                    (_, "RepoNotFound", _) | (401 | 404, _, None) => format!(
                        "{endpoint} has no model repository `{id}` (HTTP {code}); check the id, or set HF_TOKEN \
                         if it is private{said}"
                    ),
                    (404, _, Some(_)) => format!("{endpoint} lists this file but does not serve it (HTTP 404){said}"),
                    _ => format!("{endpoint} answered HTTP {code} {}{said}", clip(response.status_text())),
                };
                self.fail_status(file, Some(code), detail)
            }
        }
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(origin_of("http://127.0.0.1:80/a/b"), "http://127.0.0.1:80");
        assert_eq!(
            origin_of("https://huggingface.co"),
            "https://huggingface.co"
        );
    }
}
