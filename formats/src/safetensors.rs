//! Safetensors files, memory-mapped and validated, and sharded-checkpoint indexes.
//!
//! [`SafetensorsFile::open`] maps a file read-only and validates the whole header before anything is read:
//! header length within the file (and at most [`MAX_HEADER_LEN`]), JSON well-formed, every entry complete,
//! every dtype known, `dtype size × shape == byte length` (with overflow checks), offsets in range, no two
//! tensors overlapping, names unique. Tensor bytes are then borrowed straight from the map. Every failure is a
//! typed [`Error`] naming the file (and the tensor, where there is one); nothing here panics on input data.
//!
//! [`ShardIndex::load`] reads `model.safetensors.index.json` and confines every shard to the index's
//! directory.

use crate::dtype::{decode_to_f32, Dtype};
use crate::error::{Error, Result};
use crate::mapped::MappedFile;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Largest header accepted (100 MB). Real headers are a few MB at most; anything bigger is corruption or an
/// attempt to make us allocate.
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// One tensor's header entry, with absolute byte offsets into the file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Stored dtype.
    pub dtype: Dtype,
    /// Shape (row-major).
    pub shape: Vec<u64>,
    /// Absolute offset of the first byte in the file.
    pub offset: u64,
    /// Byte length.
    pub len: u64,
}

impl TensorInfo {
    /// Number of elements (product of the shape; 1 for a scalar).
    ///
    /// Validated tensors never overflow; for a hand-built `TensorInfo` whose product overflows, this saturates
    /// at `u64::MAX` instead of panicking.
    pub fn numel(&self) -> u64 {
        self.shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .unwrap_or(u64::MAX)
    }
}

/// A memory-mapped, validated safetensors file.
pub struct SafetensorsFile {
    path: PathBuf,
    mmap: MappedFile,
    tensors: Vec<TensorInfo>,
    metadata: Vec<(String, String)>,
}

impl fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("path", &self.path)
            .field("len", &self.mmap.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl SafetensorsFile {
    /// Open and validate a file. The file is mapped read-only; as with any memory map, it must not be
    /// truncated by another process while it is open.
    pub fn open(path: &Path) -> Result<SafetensorsFile> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if size < 8 {
            return Err(Error::corrupt(
                path,
                format!("file is {size} bytes, shorter than the 8-byte header length"),
            ));
        }
        // Its contents are validated before use.
        let mmap = MappedFile::map(path, &file)?;
        let (tensors, metadata) = Self::parse_header(path, &mmap)?;
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            mmap,
            tensors,
            metadata,
        })
    }

    /// Parse and validate the header of a complete file image. Pure function (no I/O), used by `open` and by
    /// the fuzz target. Returns the tensors sorted by offset (JSON objects carry no reliable order) and the
    /// `__metadata__` pairs sorted by key.
    #[allow(clippy::type_complexity)] // the contract's signature
    pub fn parse_header(
        path: &Path,
        bytes: &[u8],
    ) -> Result<(Vec<TensorInfo>, Vec<(String, String)>)> {
        let file_len = bytes.len() as u64;
        let Some((len_bytes, rest)) = bytes.split_first_chunk::<8>() else {
            return Err(Error::corrupt(
                path,
                format!("file is {file_len} bytes, shorter than the 8-byte header length"),
            ));
        };
        let header_len = u64::from_le_bytes(*len_bytes);
        if header_len > MAX_HEADER_LEN {
            return Err(Error::corrupt(
                path,
                format!("header length {header_len} is absurd (limit {MAX_HEADER_LEN} bytes)"),
            ));
        }
        if header_len > rest.len() as u64 {
            return Err(Error::corrupt(
                path,
                format!(
                    "header length {header_len} runs beyond the end of the file ({file_len} bytes)"
                ),
            ));
        }
        // header_len ≤ rest.len(), so it fits usize.
        let (header, data) = rest.split_at(header_len as usize);
        let data_start = 8 + header_len;
        let data_len = data.len() as u64;

        let entries: OrderedMap<Value> =
            serde_json::from_slice(header).map_err(|e| Error::Json {
                path: path.to_path_buf(),
                detail: format!("header: {e}"),
            })?;

        let mut seen = HashSet::new();
        let mut tensors = Vec::with_capacity(entries.0.len());
        let mut metadata = Vec::new();
        for (name, value) in entries.0 {
            if !seen.insert(name.clone()) {
                return Err(Error::corrupt(
                    path,
                    format!("tensor `{name}` is listed twice in the header"),
                ));
            }
            if name == "__metadata__" {
                metadata = parse_metadata(path, value)?;
                continue;
            }
            let (info, begin, end) = parse_entry(path, &name, &value)?;
            if end > data_len {
                return Err(Error::corrupt(
                    path,
                    format!(
                        "tensor `{name}`: data_offsets [{begin}, {end}] out of range: the data section is {data_len} bytes"
                    ),
                ));
            }
            let offset = data_start.checked_add(begin).ok_or_else(|| {
                Error::corrupt(path, format!("tensor `{name}`: offset overflows"))
            })?;
            tensors.push(TensorInfo { offset, ..info });
        }

        tensors.sort_by(|a, b| (a.offset, a.len, &a.name).cmp(&(b.offset, b.len, &b.name)));
        // Overlap check over non-empty ranges, in offset order: each must start at or after the furthest end
        // seen so far. Empty tensors occupy no bytes and cannot overlap anything.
        let mut furthest: Option<(u64, &str)> = None;
        for t in tensors.iter().filter(|t| t.len > 0) {
            if let Some((end, other)) = furthest {
                if t.offset < end {
                    return Err(Error::corrupt(
                        path,
                        format!(
                            "tensors `{other}` and `{}` overlap (bytes {}..{} and ..{end})",
                            t.name,
                            t.offset,
                            t.offset + t.len
                        ),
                    ));
                }
            }
            let end = t.offset + t.len; // ≤ file length, checked above
            if furthest.is_none_or(|(e, _)| end > e) {
                furthest = Some((end, &t.name));
            }
        }
        Ok((tensors, metadata))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensors, sorted by offset.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Look a tensor up by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// `__metadata__` key/value pairs, sorted by key.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    /// The raw bytes of a tensor of this file. A `TensorInfo` that does not lie inside this file (one from
    /// another file, or built by hand) gives an empty slice.
    pub fn bytes(&self, tensor: &TensorInfo) -> &[u8] {
        self.byte_range(tensor.offset, tensor.len).unwrap_or(&[])
    }

    fn byte_range(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.mmap.get(start..end)
    }

    /// Decode elements `start .. start + out.len()` (flat, row-major) of a tensor into `f32`.
    /// Errors if the range is outside the tensor (or the tensor outside this file).
    pub fn read_f32(&self, tensor: &TensorInfo, start: u64, out: &mut [f32]) -> Result<()> {
        if !tensor.dtype.reads_as_values() {
            return Err(Error::Tensor {
                path: self.path.clone(),
                tensor: tensor.name.clone(),
                detail: format!("{} elements cannot be read as values", tensor.dtype.name()),
            });
        }
        let size = tensor.dtype.size() as u64;
        let count = out.len() as u64;
        let numel = tensor.numel();
        let range_err = || Error::Tensor {
            path: self.path.clone(),
            tensor: tensor.name.clone(),
            detail: format!(
                "elements {start}..{} out of range (the tensor has {numel})",
                start.saturating_add(count)
            ),
        };
        let stop = start.checked_add(count).ok_or_else(range_err)?;
        if stop > numel || numel.checked_mul(size) != Some(tensor.len) {
            return Err(range_err());
        }
        // start * size ≤ numel * size = tensor.len, so no overflow below.
        let bytes = self
            .byte_range(tensor.offset + start * size, count * size)
            .ok_or_else(range_err)?;
        decode_to_f32(tensor.dtype, bytes, out);
        Ok(())
    }
}

/// Validate one header entry; returns the info (offset relative to the data section) and its offsets.
fn parse_entry(path: &Path, name: &str, value: &Value) -> Result<(TensorInfo, u64, u64)> {
    let bad = |what: &str| Error::Json {
        path: path.to_path_buf(),
        detail: format!("header: tensor `{name}`: {what}"),
    };
    let obj = value
        .as_object()
        .ok_or_else(|| bad("entry is not an object"))?;
    let dtype_name = match obj.get("dtype") {
        None => return Err(bad("missing `dtype`")),
        Some(Value::String(s)) => s,
        Some(_) => return Err(bad("`dtype` is not a string")),
    };
    let shape = match obj.get("shape") {
        None => return Err(bad("missing `shape`")),
        Some(Value::Array(dims)) => dims
            .iter()
            .map(Value::as_u64)
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| bad("`shape` has an entry that is not a non-negative integer"))?,
        Some(_) => return Err(bad("`shape` is not a list")),
    };
    let (begin, end) = match obj.get("data_offsets") {
        None => return Err(bad("missing `data_offsets`")),
        Some(Value::Array(o)) => match o.as_slice() {
            [b, e] => match (b.as_u64(), e.as_u64()) {
                (Some(b), Some(e)) => (b, e),
                _ => return Err(bad("`data_offsets` are not non-negative integers")),
            },
            _ => return Err(bad("`data_offsets` must hold exactly two numbers")),
        },
        Some(_) => return Err(bad("`data_offsets` is not a list")),
    };
    let dtype = Dtype::from_safetensors(dtype_name).ok_or_else(|| Error::Unsupported {
        path: path.to_path_buf(),
        detail: format!("tensor `{name}`: unknown dtype `{dtype_name}`"),
    })?;
    let tensor_err = |detail: String| Error::Tensor {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        detail,
    };
    let numel = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| tensor_err(format!("shape {shape:?} overflows u64")))?;
    let nbits = numel.checked_mul(dtype.bits()).ok_or_else(|| {
        tensor_err(format!(
            "byte size of shape {shape:?} × {} overflows u64",
            dtype.name()
        ))
    })?;
    if nbits % 8 != 0 {
        return Err(tensor_err(format!(
            "{numel} elements of {} ({} bits each) do not fill whole bytes",
            dtype.name(),
            dtype.bits()
        )));
    }
    let nbytes = nbits / 8;
    if begin > end {
        return Err(Error::corrupt(
            path,
            format!("tensor `{name}`: data_offsets [{begin}, {end}] begin after end"),
        ));
    }
    if nbytes != end - begin {
        return Err(tensor_err(format!(
            "dtype/shape mismatch: {} {shape:?} needs {nbytes} bytes but data_offsets [{begin}, {end}] span {}",
            dtype.name(),
            end - begin
        )));
    }
    Ok((
        TensorInfo {
            name: name.to_string(),
            dtype,
            shape,
            offset: begin,
            len: nbytes,
        },
        begin,
        end,
    ))
}

fn parse_metadata(path: &Path, value: Value) -> Result<Vec<(String, String)>> {
    let bad = |what: &str| Error::Json {
        path: path.to_path_buf(),
        detail: format!("header: `__metadata__` {what}"),
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                _ => Err(bad(&format!("value of `{k}` is not a string"))),
            })
            .collect(),
        _ => Err(bad("is not an object")),
    }
}

/// A JSON object read as its entries in file order, duplicates kept (serde_json's own map drops them).
struct OrderedMap<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct V_<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                // Do not trust size hints from input for preallocation beyond a small bound.
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        deserializer.deserialize_map(V_(std::marker::PhantomData))
    }
}

/// A `model.safetensors.index.json`: which shard holds each tensor.
#[derive(Debug, Clone)]
pub struct ShardIndex {
    /// `(tensor name, shard file name)` pairs, as listed.
    pub weight_map: Vec<(String, String)>,
    /// Distinct shard files, resolved against the index's directory, sorted. Every one is confined to that
    /// directory: absolute paths, `..` components and symlinks that escape it are refused (in a Hugging Face
    /// cache snapshot, links into the repository's `blobs/` are the cache's own layout and allowed).
    pub shards: Vec<PathBuf>,
}

#[derive(serde::Deserialize)]
struct IndexFile {
    weight_map: OrderedMap<String>,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<Value>,
}

impl ShardIndex {
    /// Load and validate an index file. Errors: [`Error::Io`] if the index or a shard it names is missing
    /// (naming that file), [`Error::Json`] for a malformed index, [`Error::Refused`] for a shard name that is
    /// absolute, has a `..` component or resolves (through symlinks) outside the index's directory.
    pub fn load(index_path: &Path) -> Result<ShardIndex> {
        let text = std::fs::read(index_path).map_err(|e| Error::io(index_path, e))?;
        let parsed: IndexFile = serde_json::from_slice(&text).map_err(|e| Error::Json {
            path: index_path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let dir = match index_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut seen = HashSet::new();
        let mut shards = Vec::new();
        let mut roots: Option<Vec<PathBuf>> = None;
        for (tensor, shard) in &parsed.weight_map.0 {
            if !seen.insert(tensor.as_str()) {
                return Err(Error::corrupt(
                    index_path,
                    format!("tensor `{tensor}` is listed twice in weight_map"),
                ));
            }
            let rel = confine(index_path, shard)?;
            let resolved = dir.join(&rel);
            if shards.contains(&resolved) {
                continue;
            }
            match std::fs::canonicalize(&resolved) {
                Ok(real) => {
                    if roots.is_none() {
                        roots = Some(allowed_roots(&dir)?);
                    }
                    if !roots.iter().flatten().any(|root| real.starts_with(root)) {
                        return Err(Error::Refused {
                            path: index_path.to_path_buf(),
                            detail: format!(
                                "shard `{shard}` resolves to {}, outside the index's directory",
                                real.display()
                            ),
                        });
                    }
                }
                Err(e) => {
                    return Err(Error::Io {
                        path: resolved,
                        source: std::io::Error::new(
                            e.kind(),
                            format!(
                                "shard `{shard}` (holding `{tensor}`) listed in {}: {e}",
                                index_path.display()
                            ),
                        ),
                    })
                }
            }
            shards.push(resolved);
        }
        shards.sort();
        Ok(ShardIndex {
            weight_map: parsed.weight_map.0,
            shards,
        })
    }
}

/// Where a shard's real path may lie: the index's directory, and, when that directory is inside a Hugging Face
/// cache snapshot (`<repo>/snapshots/<revision>/...`), the repository's `blobs/` directory, which is where
/// the cache's snapshot symlinks point.
fn allowed_roots(dir: &Path) -> Result<Vec<PathBuf>> {
    let real_dir = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    let mut roots = vec![real_dir.clone()];
    let snapshot = real_dir.ancestors().find(|a| {
        a.parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "snapshots")
    });
    if let Some(repo) = snapshot.and_then(Path::parent).and_then(Path::parent) {
        if let Ok(blobs) = std::fs::canonicalize(repo.join("blobs")) {
            roots.push(blobs);
        }
    }
    Ok(roots)
}

/// A shard name as a relative path below the index's directory, or a refusal.
fn confine(index_path: &Path, shard: &str) -> Result<PathBuf> {
    let refuse = |why: &str| Error::Refused {
        path: index_path.to_path_buf(),
        detail: format!("shard name `{shard}` {why}; shards must lie in the index's directory"),
    };
    if shard.is_empty() {
        return Err(refuse("is empty"));
    }
    // Judge both separators on every platform: a name written on Windows must not escape on Unix either.
    let drive = matches!(shard.as_bytes(), [l, b':', ..] if l.is_ascii_alphabetic());
    if shard.starts_with('/') || shard.starts_with('\\') || drive {
        return Err(refuse("is absolute"));
    }
    if shard.split(['/', '\\']).any(|c| c == "..") {
        return Err(refuse("has a `..` component"));
    }
    let p = Path::new(shard);
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("has a `..` component")),
            Component::RootDir | Component::Prefix(_) => return Err(refuse("is absolute")),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(refuse("names no file"));
    }
    Ok(rel)
}

impl SafetensorsFile {
    /// Note that elements `start .. start + count` of a tensor will not be read again soon. Streaming readers
    /// call it behind them so that the resident set of a multi-GB checkpoint stays small; the map's pages are
    /// given back in batches ([`MappedFile::release`]).
    pub fn release(&self, tensor: &TensorInfo, start: u64, count: u64) {
        let size = tensor.dtype.size() as u64;
        let end = start.saturating_add(count).min(tensor.len / size.max(1));
        self.mmap
            .release(end.saturating_sub(start).saturating_mul(size));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(header: &str, data: &[u8]) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[allow(clippy::type_complexity)]
    fn parse(header: &str, data: &[u8]) -> Result<(Vec<TensorInfo>, Vec<(String, String)>)> {
        SafetensorsFile::parse_header(Path::new("m.safetensors"), &image(header, data))
    }

    #[test]
    fn absolute_offsets_sorted_by_offset() {
        let h = r#"{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"I8","shape":[2,2],"data_offsets":[0,4]},"__metadata__":{"format":"pt"}}"#;
        let (t, m) = parse(h, &[0; 8]).unwrap();
        let base = 8 + h.len() as u64;
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].name.as_str(), t[0].offset, t[0].len), ("a", base, 4));
        assert_eq!(
            (t[1].name.as_str(), t[1].offset, t[1].len),
            ("b", base + 4, 4)
        );
        assert_eq!(t[0].shape, vec![2, 2]);
        assert_eq!(m, vec![("format".to_string(), "pt".to_string())]);
    }

    #[test]
    fn scalar_and_empty_tensors() {
        let h = r#"{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[2,2]}}"#;
        let (t, _) = parse(h, &[0; 4]).unwrap();
        assert_eq!(t.iter().map(|t| t.numel()).collect::<Vec<_>>(), vec![1, 0]);
    }

    #[test]
    fn rejects_duplicates_gaps_ok() {
        let h = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#;
        let e = parse(h, &[0; 3]).unwrap_err().to_string();
        assert!(
            e.contains("listed twice") && e.contains("m.safetensors"),
            "{e}"
        );
        let h = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#;
        assert_eq!(parse(h, &[0; 3]).unwrap().0.len(), 2);
    }

    #[test]
    fn rejects_overlap_in_any_header_order() {
        // b (1..2) lies inside a (0..8); c is listed first and is fine.
        let h = r#"{"c":{"dtype":"U8","shape":[1],"data_offsets":[9,10]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#;
        let e = parse(h, &[0; 10]).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { .. }) && e.to_string().contains("overlap"),
            "{e}"
        );
    }

    #[test]
    fn entry_shape_errors() {
        for (h, want) in [
            (
                r#"{"a":{"shape":[1],"data_offsets":[0,1]}}"#,
                "missing `dtype`",
            ),
            (
                r#"{"a":{"dtype":"U8","data_offsets":[0,1]}}"#,
                "missing `shape`",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[1]}}"#,
                "missing `data_offsets`",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#,
                "not a non-negative integer",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}"#,
                "exactly two",
            ),
            (r#"{"a":3}"#, "not an object"),
            (r#"[1,2]"#, "a JSON object"),
            (r#"{"__metadata__":{"k":1}}"#, "not a string"),
        ] {
            let e = parse(h, &[0; 1]).unwrap_err();
            assert!(matches!(e, Error::Json { .. }), "{h}: {e:?}");
            assert!(e.to_string().contains(want), "{h}: {e}");
        }
    }

    #[test]
    fn overflow_and_begin_after_end() {
        let h = r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,1]}}"#;
        let e = parse(h, &[0; 1]).unwrap_err();
        assert!(
            matches!(&e, Error::Tensor { tensor, .. } if tensor == "a")
                && e.to_string().contains("overflow"),
            "{e}"
        );
        let h = r#"{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,1]}}"#;
        assert!(parse(h, &[0; 1])
            .unwrap_err()
            .to_string()
            .contains("overflow"));
        let h = r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}}"#;
        let e = parse(h, &[0; 1]).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { .. }) && e.to_string().contains("begin after end"),
            "{e}"
        );
    }

    #[test]
    fn absurd_header_length() {
        let mut v = (MAX_HEADER_LEN + 1).to_le_bytes().to_vec();
        v.extend_from_slice(b"{}");
        let e = SafetensorsFile::parse_header(Path::new("x"), &v).unwrap_err();
        assert!(e.to_string().contains("absurd"), "{e}");
        let v = u64::MAX.to_le_bytes();
        assert!(SafetensorsFile::parse_header(Path::new("x"), &v).is_err());
    }

    #[test]
    fn confine_rules() {
        let p = Path::new("idx.json");
        assert_eq!(
            confine(p, "./a/b.safetensors").unwrap(),
            PathBuf::from("a/b.safetensors")
        );
        for bad in [
            "",
            "/etc/passwd",
            "\\x",
            "C:\\x",
            "a/../b",
            "..\\b",
            ".",
            "./",
        ] {
            assert!(
                matches!(confine(p, bad), Err(Error::Refused { .. })),
                "{bad}"
            );
        }
    }
}
