//! A stand-in for the Hugging Face Hub on 127.0.0.1, serving what hf-hub's blocking client (0.4) asks for:
//!
//! - `GET /api/models/{org}/{name}/revision/{rev}`: the listing, `{"sha", "siblings": [{"rfilename"}]}`;
//! - `GET /{org}/{name}/resolve/{rev}/{file}` with `Range: bytes=0-0` (metadata), then `bytes=N-` (content).
//!   Small files answer directly (206, `etag`, `x-repo-commit`, `Content-Range`). LFS files (weights) answer
//!   302 to `/cdn/...` on the same server, with `x-linked-etag` (their SHA-256), `x-linked-size` and
//!   `x-repo-commit`, as the real Hub redirects to its storage;
//! - `GET /cdn/{repo}/{file}`: the bytes, honouring `Range`.
//!
//! Errors carry the Hub's `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`). One
//! connection serves one request (`Connection: close`); every request is logged for the tests to inspect.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One file of a fake repository.
pub struct FakeFile {
    pub name: String,
    pub data: Vec<u8>,
    /// Blob name announced instead of the real one (to test hostile answers).
    pub etag: Option<String>,
}

/// A fake model repository at one commit.
pub struct FakeRepo {
    pub id: String,
    pub commit: String,
    pub files: Vec<FakeFile>,
}

impl FakeRepo {
    pub fn new(id: &str, commit: &str) -> FakeRepo {
        FakeRepo {
            id: id.to_string(),
            commit: commit.to_string(),
            files: Vec::new(),
        }
    }

    /// Every file below `dir`, named by its path relative to it.
    pub fn from_dir(id: &str, commit: &str, dir: &Path) -> FakeRepo {
        let mut repo = FakeRepo::new(id, commit);
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let name = path
                        .strip_prefix(dir)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string();
                    repo = repo.with_file(&name, std::fs::read(&path).unwrap());
                }
            }
        }
        repo.files.sort_by(|a, b| a.name.cmp(&b.name));
        repo
    }

    pub fn with_file(mut self, name: &str, data: impl Into<Vec<u8>>) -> FakeRepo {
        self.files.push(FakeFile {
            name: name.to_string(),
            data: data.into(),
            etag: None,
        });
        self
    }

    /// Announce `etag` as the blob name of `name`.
    pub fn with_etag(mut self, name: &str, etag: &str) -> FakeRepo {
        let file = self.files.iter_mut().find(|f| f.name == name).unwrap();
        file.etag = Some(etag.to_string());
        self
    }
}

pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_lfs(name: &str) -> bool {
    [".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt"]
        .iter()
        .any(|e| name.ends_with(e))
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

/// The running server; stopped when dropped.
pub struct FakeHub {
    url: String,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    pub fn start(repos: Vec<FakeRepo>) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new((url.clone(), repos));
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        // A broken connection only fails that request; the client reports it.
                        let _ = serve(stream, &state, &log);
                    }
                }
            })
        };
        FakeHub {
            url,
            log,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// Requests for `resolve/.../{file}` or `cdn/.../{file}` of any repository.
    pub fn file_requests(&self, file: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                (r.path.contains("/resolve/") || r.path.starts_with("/cdn/"))
                    && r.path.ends_with(&format!("/{file}"))
            })
            .count()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type State = (String, Vec<FakeRepo>);

fn serve(stream: TcpStream, state: &State, log: &Mutex<Vec<Request>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let (mut range, mut authorization) = (None, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v.trim().to_string()),
                "authorization" => authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    log.lock().unwrap().push(Request {
        path: path.clone(),
        range: range.clone(),
        authorization,
    });
    let (base, repos) = state;
    let mut out = stream;
    let not_found = |out: &mut TcpStream, code: &str| {
        respond(
            out,
            "404 Not Found",
            &[("X-Error-Code", code.to_string())],
            b"{\"error\":\"not found\"}",
        )
    };
    let find = |id: &str| repos.iter().find(|r| r.id == id);
    let revision_ok = |repo: &FakeRepo, rev: &str| rev == "main" || rev == repo.commit;

    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((id, rev)) = rest.split_once("/revision/") else {
            return not_found(&mut out, "RepoNotFound");
        };
        let Some(repo) = find(id) else {
            return not_found(&mut out, "RepoNotFound");
        };
        if !revision_ok(repo, rev) {
            return not_found(&mut out, "RevisionNotFound");
        }
        let siblings: Vec<serde_json::Value> = repo
            .files
            .iter()
            .map(|f| serde_json::json!({ "rfilename": f.name }))
            .collect();
        let body = serde_json::json!({ "id": repo.id, "sha": repo.commit, "siblings": siblings });
        let headers = [("Content-Type", "application/json".to_string())];
        return respond(&mut out, "200 OK", &headers, body.to_string().as_bytes());
    }
    if let Some(rest) = path.strip_prefix("/cdn/") {
        let mut parts = rest.splitn(3, '/');
        let (org, name, file) = (parts.next(), parts.next(), parts.next());
        let found = match (org, name, file) {
            (Some(org), Some(name), Some(file)) => {
                find(&format!("{org}/{name}")).and_then(|r| r.files.iter().find(|f| f.name == file))
            }
            _ => None,
        };
        return match found {
            Some(f) => content(&mut out, &f.data, range.as_deref(), &[]),
            None => not_found(&mut out, "EntryNotFound"),
        };
    }
    // /{org}/{name}/resolve/{rev}/{file}
    let mut parts = path.trim_start_matches('/').splitn(5, '/');
    let (org, name, verb, rev, file) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let id = format!("{org}/{name}");
    let Some(repo) = find(&id).filter(|_| verb == "resolve") else {
        return not_found(&mut out, "RepoNotFound");
    };
    if !revision_ok(repo, rev) {
        return not_found(&mut out, "RevisionNotFound");
    }
    let Some(f) = repo.files.iter().find(|f| f.name == file) else {
        return not_found(&mut out, "EntryNotFound");
    };
    let sha = sha256(&f.data);
    let commit = ("x-repo-commit", repo.commit.clone());
    if is_lfs(file) {
        let etag = f.etag.clone().unwrap_or(sha);
        let headers = [
            commit,
            ("x-linked-etag", format!("\"{etag}\"")),
            ("x-linked-size", f.data.len().to_string()),
            ("etag", "\"redirect\"".to_string()),
            ("Location", format!("{base}/cdn/{id}/{file}")),
        ];
        return respond(&mut out, "302 Found", &headers, b"");
    }
    let etag = f.etag.clone().unwrap_or_else(|| sha[..40].to_string());
    content(
        &mut out,
        &f.data,
        range.as_deref(),
        &[commit, ("etag", format!("\"{etag}\""))],
    )
}

/// The bytes, or the range asked for (`bytes=A-` or `bytes=A-B`).
fn content(
    out: &mut TcpStream,
    data: &[u8],
    range: Option<&str>,
    extra: &[(&str, String)],
) -> std::io::Result<()> {
    let Some(spec) = range.and_then(|r| r.strip_prefix("bytes=")) else {
        return respond(out, "200 OK", extra, data);
    };
    let (a, b) = spec.split_once('-').unwrap_or((spec, ""));
    let start: usize = a.parse().unwrap_or(0);
    let end: usize = b
        .parse::<usize>()
        .map_or(data.len(), |b| (b + 1).min(data.len()));
    if start >= data.len() || start >= end {
        let headers = [("Content-Range", format!("bytes */{}", data.len()))];
        return respond(out, "416 Range Not Satisfiable", &headers, b"");
    }
    let mut headers = extra.to_vec();
    headers.push((
        "Content-Range",
        format!("bytes {start}-{}/{}", end - 1, data.len()),
    ));
    respond(out, "206 Partial Content", &headers, &data[start..end])
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}
