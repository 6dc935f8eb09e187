//! `provsearch serve`: keep an index open with its HNSW graphs checked and warm in the page cache, pick up new
//! commits, and answer queries over HTTP/1.1 on a loopback port; plus the client that `query` uses when a
//! server is running.
//!
//! Discovery: the server writes `serve.json` (`{"address", "pid", "generation"}`) into the index directory.
//! Endpoints (JSON bodies): `POST /query/model` ([`ModelRequest`] → [`ModelResponse`]), `POST /query/text`
//! ([`TextRequest`] → text results), `GET /stats`, `GET /health`. Errors come back as `{"error": "..."}`
//! with status 400/500.

use super::index::index_dir;
use crate::flags::IndexArg;
use anyhow::{bail, Context, Result};
use provsearch_index::schema::SourceFormat;
use provsearch_index::search::{query, query_text, QueryOptions, QueryResult, TextResult};
use provsearch_index::{Fingerprint, IndexReader};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Discovery file name inside the index directory.
pub const SERVE_FILE: &str = "serve.json";
/// Largest request body accepted.
const MAX_BODY: usize = 64 << 20;

/// The query model, summarised for output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuerySummary {
    /// What the user named.
    pub spec: String,
    /// Model id.
    pub model_id: String,
    /// Revision.
    pub revision: Option<String>,
    /// Parameter count.
    pub parameter_count: u64,
    /// Config `model_type`.
    pub model_type: String,
    /// Declared base models.
    pub declared_base_models: Vec<String>,
    /// Weight file format (`safetensors`, `gguf`).
    #[serde(default)]
    pub format: Option<SourceFormat>,
    /// Quantization scheme of the stored weights, `None` for float weights.
    #[serde(default)]
    pub quantization: Option<String>,
}

impl QuerySummary {
    /// Summary of a fingerprint.
    pub fn of(f: &Fingerprint, spec: &str) -> Self {
        QuerySummary {
            spec: spec.to_string(),
            model_id: f.source.id.clone(),
            revision: f.source.revision.clone(),
            parameter_count: f.source.parameter_count,
            model_type: f.metadata.model_type.clone(),
            declared_base_models: f.metadata.declared_base_models.clone(),
            format: Some(f.source.format),
            quantization: f.source.quantization.clone(),
        }
    }
}

/// `POST /query/model`: a model id in the index, or a fingerprint.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelRequest {
    /// An indexed model id.
    pub model_id: Option<String>,
    /// A fingerprint (when the model is not in the index).
    pub fingerprint: Option<Fingerprint>,
    /// Query options.
    pub options: QueryOptions,
}

/// Answer to [`ModelRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelResponse {
    /// The query model.
    pub query: QuerySummary,
    /// Ranked results.
    pub result: QueryResult,
}

/// `POST /query/text`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TextRequest {
    /// tantivy query.
    pub query: String,
    /// Results wanted.
    pub top_k: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Discovery {
    address: String,
    pid: u32,
    generation: u64,
}

/// Look an indexed model up by id: its stored fingerprint.
pub fn stored_fingerprint(reader: &IndexReader, id: &str) -> Result<Option<Fingerprint>> {
    match reader.find_id(id)?.first() {
        Some(r) => Ok(Some(reader.segments()[r.segment].fingerprint(r.doc)?)),
        None => Ok(None),
    }
}

/// Answer a model request against a reader.
pub fn answer_model(reader: &IndexReader, req: ModelRequest) -> Result<ModelResponse> {
    let (f, spec) = match (req.fingerprint, req.model_id) {
        (Some(f), _) => {
            let spec = f.source.id.clone();
            (f, spec)
        }
        (None, Some(id)) => match stored_fingerprint(reader, &id)? {
            Some(f) => (f, id),
            None => bail!("model `{id}` is not in the index"),
        },
        (None, None) => bail!("request names no model"),
    };
    let result = query(reader, &f, &req.options)?;
    Ok(ModelResponse {
        query: QuerySummary::of(&f, &spec),
        result,
    })
}

fn respond(stream: &mut TcpStream, status: u16, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

/// Read one HTTP request: (method, path, body).
fn read_request(stream: &TcpStream) -> Result<(String, String, Vec<u8>)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().context("bad Content-Length")?;
            }
        }
    }
    if length > MAX_BODY {
        bail!("request body of {length} bytes is too large");
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok((method, path, body))
}

fn handle(mut stream: TcpStream, state: &RwLock<Arc<IndexReader>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let reader = match state.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let outcome: Result<(u16, Vec<u8>)> = (|| {
        let (method, path, body) = read_request(&stream)?;
        Ok(match (method.as_str(), path.as_str()) {
            ("GET", "/health") => (
                200,
                serde_json::to_vec(
                    &serde_json::json!({"ok": true, "generation": reader.manifest().generation}),
                )?,
            ),
            ("GET", "/stats") => (200, serde_json::to_vec(&reader.stats())?),
            ("POST", "/query/model") => {
                let req: ModelRequest =
                    serde_json::from_slice(&body).context("bad request body")?;
                match answer_model(&reader, req) {
                    Ok(r) => (200, serde_json::to_vec(&r)?),
                    Err(e) => (
                        400,
                        serde_json::to_vec(&serde_json::json!({"error": format!("{e:#}")}))?,
                    ),
                }
            }
            ("POST", "/query/text") => {
                let req: TextRequest = serde_json::from_slice(&body).context("bad request body")?;
                match query_text(&reader, &req.query, req.top_k) {
                    Ok(r) => (200, serde_json::to_vec(&r)?),
                    Err(e) => (
                        400,
                        serde_json::to_vec(&serde_json::json!({"error": e.to_string()}))?,
                    ),
                }
            }
            _ => (
                404,
                serde_json::to_vec(&serde_json::json!({"error": "no such endpoint"}))?,
            ),
        })
    })();
    let (status, body) = outcome.unwrap_or_else(|e| {
        (
            500,
            serde_json::json!({"error": format!("{e:#}")})
                .to_string()
                .into_bytes(),
        )
    });
    let _ = respond(&mut stream, status, &body);
}

fn write_discovery(dir: &Path, addr: SocketAddr, generation: u64) -> Result<()> {
    let d = Discovery {
        address: addr.to_string(),
        pid: std::process::id(),
        generation,
    };
    let tmp = dir.join(format!("{SERVE_FILE}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&d)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(SERVE_FILE))
        .with_context(|| format!("cannot write {}", dir.join(SERVE_FILE).display()))?;
    Ok(())
}

/// Run the server (never returns unless it fails).
pub fn run(index: &IndexArg, listen: &str) -> Result<()> {
    let dir = index_dir(index)?;
    let reader =
        IndexReader::open(&dir).with_context(|| format!("cannot open index {}", dir.display()))?;
    reader
        .load_graphs()
        .with_context(|| format!("cannot warm the graphs of {}", dir.display()))?;
    let listener =
        TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    write_discovery(&dir, addr, reader.manifest().generation)?;
    eprintln!(
        "provsearch: serving {} ({} models, generation {}) on http://{addr}",
        dir.display(),
        reader.live_count(),
        reader.manifest().generation
    );
    let state = Arc::new(RwLock::new(Arc::new(reader)));
    {
        let state = state.clone();
        let dir: PathBuf = dir.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let current = match state.read() {
                Ok(g) => g.clone(),
                Err(p) => p.into_inner().clone(),
            };
            if !current.is_stale() {
                continue;
            }
            match current.reload().and_then(|r| r.load_graphs().map(|_| r)) {
                Ok(next) => {
                    let generation = next.manifest().generation;
                    if let Ok(mut g) = state.write() {
                        *g = Arc::new(next);
                    }
                    let _ = write_discovery(&dir, addr, generation);
                    eprintln!("provsearch: picked up generation {generation}");
                }
                Err(e) => eprintln!("provsearch: cannot reload {}: {e}", dir.display()),
            }
        });
    }
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let state = state.clone();
        std::thread::spawn(move || handle(stream, &state));
    }
    Ok(())
}

/// A running server found through `serve.json`.
pub struct Client {
    address: SocketAddr,
}

impl Client {
    /// Find a server for the index in `dir`, if one answers.
    pub fn discover(dir: &Path) -> Option<Client> {
        let text = std::fs::read(dir.join(SERVE_FILE)).ok()?;
        let d: Discovery = serde_json::from_slice(&text).ok()?;
        let address: SocketAddr = d.address.parse().ok()?;
        let c = Client { address };
        c.post_or_get("GET", "/health", b"").ok().map(|_| c)
    }

    fn post_or_get(&self, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&self.address, Duration::from_millis(300))?;
        s.set_read_timeout(Some(Duration::from_secs(600)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.address,
            body.len()
        )?;
        s.write_all(body)?;
        let mut response = Vec::new();
        s.read_to_end(&mut response)?;
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("malformed response from server")?;
        let head = String::from_utf8_lossy(&response[..split]);
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("malformed response from server")?;
        let body = response[split + 4..].to_vec();
        if status != 200 {
            let msg = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                .unwrap_or_else(|| format!("status {status}"));
            bail!("server at {}: {msg}", self.address);
        }
        Ok(body)
    }

    /// Ask for relatives of a model.
    pub fn query_model(&self, req: &ModelRequest) -> Result<ModelResponse> {
        let body = self.post_or_get("POST", "/query/model", &serde_json::to_vec(req)?)?;
        serde_json::from_slice(&body).context("malformed response from server")
    }

    /// Metadata text search.
    pub fn query_text(&self, req: &TextRequest) -> Result<Vec<TextResult>> {
        let body = self.post_or_get("POST", "/query/text", &serde_json::to_vec(req)?)?;
        serde_json::from_slice(&body).context("malformed response from server")
    }
}
