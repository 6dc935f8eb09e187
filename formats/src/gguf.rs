//! GGUF files (llama.cpp, versions 2 and 3): memory-mapped, validated header, and tensors read as `f32` in
//! Hugging Face layout.
//!
//! [`GgufFile::open`] maps the file and parses the whole header with [`GgufFile::parse`], a pure function that
//! checks every count and length against the bytes that remain *before* allocating for it, every tensor's type,
//! shape and data range, and the data alignment (`general.alignment`, default 32). After that, reads cannot go
//! out of bounds.
//!
//! Tensors are presented the way the rest of provsearch sees safetensors checkpoints:
//! - [`GgufTensor::hf_name`] maps llama.cpp names (`blk.3.attn_q.weight`) onto Hugging Face names
//!   (`model.layers.3.self_attn.q_proj.weight`) for Llama-style architectures ([`names`]);
//! - [`GgufFile::read_f32`] decodes any element range in row-major order of the logical shape (`ne` reversed),
//!   decoding only the quantization blocks that cover it ([`dequant`]), and undoes the rotary row permutation
//!   that llama.cpp's converter applies to Q and K projections;
//! - [`GgufFile::vocabulary`] and [`GgufFile::config`] rebuild the tokenizer vocabulary and the config fields
//!   from `tokenizer.ggml.*` and `<arch>.*` metadata (the private `metadata` module).
//!
//! Memory: tensor bytes are never copied; [`GgufFile::read_f32`] needs nothing beyond the caller's `out` and one
//! block (at most 256 floats) on the stack, so streaming a tensor in chunks has bounded memory. The metadata is
//! materialised (about 32 bytes per array element plus the string bytes), which is bounded by the file size.
//!
//! The `gguf-writer` feature adds a `writer` module for writing GGUF v3 files with simple quantizers,
//! for tests here and in other crates.

pub mod dequant;
mod metadata;
pub mod names;
pub mod split;
#[cfg(feature = "gguf-writer")]
pub mod writer;

pub use crate::strings::StringList;
pub use dequant::{dequantize, DequantError, GgmlType};

use crate::error::{Error, Result};
use crate::mapped::MappedFile;
use std::path::{Path, PathBuf};

/// The file magic, `"GGUF"`.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's maximum number of tensor dimensions.
pub const MAX_DIMS: u32 = 4;
/// Deepest nesting of metadata arrays accepted (real files use 1; the limit keeps recursion bounded).
const MAX_ARRAY_DEPTH: u32 = 4;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// Type 0.
    U8(u8),
    /// Type 1.
    I8(i8),
    /// Type 2.
    U16(u16),
    /// Type 3.
    I16(i16),
    /// Type 4.
    U32(u32),
    /// Type 5.
    I32(i32),
    /// Type 6.
    F32(f32),
    /// Type 7.
    Bool(bool),
    /// Type 8 (invalid UTF-8 is replaced by U+FFFD).
    String(String),
    /// Type 9: elements of one type, other than strings.
    Array(Vec<GgufValue>),
    /// Type 9 with elements of type 8: an array of strings, packed into one buffer (a vocabulary holds
    /// hundreds of thousands of them). [`GgufFile::parse`] gives every array of strings this form.
    StringArray(Box<StringList>),
    /// Type 10.
    U64(u64),
    /// Type 11.
    I64(i64),
    /// Type 12.
    F64(f64),
}

impl GgufValue {
    /// Any integer value that is ≥ 0, as `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer value that fits `u32`.
    pub fn as_u32(&self) -> Option<u32> {
        self.as_u64().and_then(|v| u32::try_from(v).ok())
    }

    /// Any integer value, as `i64` (`None` for a `u64` above `i64::MAX`).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            GgufValue::I8(v) => Some(v.into()),
            GgufValue::I16(v) => Some(v.into()),
            GgufValue::I32(v) => Some(v.into()),
            GgufValue::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// Any numeric value, as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v.into()),
            GgufValue::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    /// A boolean value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// A string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// An array value (`None` for an array of strings: see [`GgufValue::as_string_array`]).
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// An array of strings.
    pub fn as_string_array(&self) -> Option<&StringList> {
        match self {
            GgufValue::StringArray(a) => Some(a),
            _ => None,
        }
    }

    /// The number of elements of an array value, of either form.
    pub fn array_len(&self) -> Option<usize> {
        match self {
            GgufValue::Array(a) => Some(a.len()),
            GgufValue::StringArray(a) => Some(a.len()),
            _ => None,
        }
    }
}

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensor {
    /// llama.cpp name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Hugging Face name, for Llama-style architectures (`model.layers.0.self_attn.q_proj.weight`).
    pub hf_name: Option<String>,
    /// Stored type.
    pub ggml_type: GgmlType,
    /// Dimensions in GGUF `ne` order (`ne[0]` varies fastest: the row length).
    pub dims: Vec<u64>,
    /// Logical row-major shape (`dims` reversed), as in the Hugging Face checkpoint.
    pub shape: Vec<u64>,
    /// Absolute offset of the first byte in the file.
    pub offset: u64,
    /// Byte length.
    pub len: u64,
    /// For Q/K projections stored with llama.cpp's rotary row permutation: the head count it was applied with
    /// (`n_head` for Q, `n_head_kv` for K). [`GgufFile::read_f32`] undoes it.
    pub unpermute_heads: Option<u32>,
}

impl GgufTensor {
    /// Number of elements (1 for a tensor without dimensions; saturates at `u64::MAX`, which only a
    /// hand-built tensor can reach: [`GgufFile::parse`] rejects overflowing shapes).
    pub fn numel(&self) -> u64 {
        self.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// Row length: `ne[0]` (1 for a tensor without dimensions).
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }
}

/// A parsed GGUF header.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata key/value pairs in file order.
    pub metadata: Vec<(String, GgufValue)>,
    /// Tensors in file order.
    pub tensors: Vec<GgufTensor>,
    /// Data alignment.
    pub alignment: u64,
    /// Absolute offset where tensor data starts.
    pub data_offset: u64,
}

impl GgufHeader {
    /// The value of a metadata key.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(GgufValue::as_str)
    }
}

/// A memory-mapped, validated GGUF file.
pub struct GgufFile {
    path: PathBuf,
    mmap: MappedFile,
    /// The same file, for [`GgufFile::pread_f32`].
    #[cfg_attr(not(unix), allow(dead_code))]
    file: std::fs::File,
    header: GgufHeader,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("tensors", &self.header.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Open, map and validate a file.
    pub fn open(path: &Path) -> Result<GgufFile> {
        GgufFile::open_with(path, None)
    }

    /// Open a later part of a `gguf-split` model. gguf-split writes the model's metadata into the first part
    /// only, so the architecture and head counts that name this part's tensors and undo their rotary
    /// permutation come from `first` (this part's own keys win).
    pub fn open_part(path: &Path, first: &GgufHeader) -> Result<GgufFile> {
        GgufFile::open_with(path, Some(first))
    }

    fn open_with(path: &Path, context: Option<&GgufHeader>) -> Result<GgufFile> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < 24 {
            return Err(Error::corrupt(
                path,
                format!("{len} bytes is too short for a GGUF header"),
            ));
        }
        let mmap = MappedFile::map(path, &file)?;
        let header = parse_header(path, &mmap, context)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            mmap,
            file,
            header,
        })
    }

    /// Parse and validate the header of a complete file image. Pure (no I/O): used by [`GgufFile::open`] and
    /// the fuzz target. Every tensor's data range is checked to lie inside `bytes`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<GgufHeader> {
        parse_header(path, bytes, None)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed header.
    pub fn header(&self) -> &GgufHeader {
        &self.header
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Option<&str> {
        self.header.architecture()
    }

    /// The value of a metadata key.
    pub fn metadata(&self, key: &str) -> Option<&GgufValue> {
        self.header.get(key)
    }

    /// The tensors, in file order.
    pub fn tensors(&self) -> &[GgufTensor] {
        &self.header.tensors
    }

    /// The tensor with this llama.cpp name or Hugging Face name.
    pub fn tensor(&self, name: &str) -> Option<&GgufTensor> {
        self.header
            .tensors
            .iter()
            .find(|t| t.name == name || t.hf_name.as_deref() == Some(name))
    }

    /// The raw stored bytes of a tensor of this file (quantized blocks as stored, rows permuted as stored).
    pub fn raw_bytes(&self, tensor: &GgufTensor) -> Result<&[u8]> {
        self.view().slice(tensor, tensor.offset, tensor.len)
    }

    /// Dequantize logical elements `start .. start + out.len()` of a tensor, in Hugging Face row-major layout
    /// (rows = `ne[1]`, cols = `ne[0]` for 2-D; the rotary permutation of Q/K already undone). Only the blocks
    /// that cover the range are decoded, so single elements are cheap and whole tensors can be streamed in
    /// chunks of any size.
    pub fn read_f32(&self, tensor: &GgufTensor, start: u64, out: &mut [f32]) -> Result<()> {
        let view = self.view();
        let mut blocks = Mapped {
            data: view.slice(tensor, tensor.offset, tensor.len)?,
        };
        view.read_f32(tensor, start, out, &mut blocks)
    }

    /// [`GgufFile::read_f32`] through `pread` instead of the memory map: the same values, but the blocks are
    /// copied from the page cache into a reused per-thread buffer (at most [`PREAD_BYTES`] at a time), so no
    /// page of the map is faulted in and nothing needs releasing afterwards. Cheaper for scattered rows (no
    /// page-table entries to set up and tear down) and for long streams alike. Reads through the map on
    /// platforms without `pread`.
    pub fn pread_f32(&self, tensor: &GgufTensor, start: u64, out: &mut [f32]) -> Result<()> {
        #[cfg(unix)]
        {
            thread_local! {
                static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
            }
            let view = self.view();
            // The same bounds check as a mapped read: the tensor's bytes lie in the file.
            view.slice(tensor, tensor.offset, tensor.len)?;
            BUF.with(|buf| {
                let mut blocks = Pread {
                    file: &self.file,
                    path: &self.path,
                    offset: tensor.offset,
                    len: tensor.len,
                    buf: &mut buf.borrow_mut(),
                };
                view.read_f32(tensor, start, out, &mut blocks)
            })
        }
        #[cfg(not(unix))]
        self.read_f32(tensor, start, out)
    }

    /// Note that logical elements `start .. start + count` of a tensor will not be read again soon. Streaming
    /// readers call it behind them so that the resident set stays small; the map's pages are given back in
    /// batches ([`MappedFile::release`]).
    pub fn release(&self, tensor: &GgufTensor, start: u64, count: u64) {
        let end = start.saturating_add(count).min(tensor.numel());
        let ty = tensor.ggml_type;
        let (bs, ts) = (ty.block_size() as u64, ty.type_size() as u64);
        let bytes = (end.saturating_sub(start) / bs.max(1)).saturating_mul(ts);
        self.mmap.release(bytes);
    }

    fn view(&self) -> FileView<'_> {
        FileView {
            path: &self.path,
            bytes: &self.mmap,
        }
    }

    /// The vocabulary from `tokenizer.ggml.*` metadata; `Ok(None)` when the file has no token list.
    pub fn vocabulary(&self) -> Result<Option<crate::tokenizer::Vocabulary>> {
        metadata::vocabulary(&self.path, &self.header)
    }

    /// The config fields from `general.architecture` and `<arch>.*` metadata (and the tensor list, for
    /// `tie_word_embeddings` and `attention_bias`).
    pub fn config(&self) -> crate::config::ModelConfig {
        metadata::config(&self.header)
    }
}

/// A parsed file image: the tensor-reading half of [`GgufFile`], also used by the fuzz entry point.
struct FileView<'a> {
    path: &'a Path,
    bytes: &'a [u8],
}

impl<'a> FileView<'a> {
    fn slice(&self, tensor: &GgufTensor, offset: u64, len: u64) -> Result<&'a [u8]> {
        let range = usize::try_from(offset)
            .ok()
            .zip(
                offset
                    .checked_add(len)
                    .and_then(|e| usize::try_from(e).ok()),
            )
            .and_then(|(s, e)| self.bytes.get(s..e));
        range.ok_or_else(|| {
            self.tensor_error(tensor, format!("bytes {offset}+{len} are outside the file"))
        })
    }

    fn tensor_error(&self, tensor: &GgufTensor, detail: String) -> Error {
        Error::Tensor {
            path: self.path.to_path_buf(),
            tensor: tensor.name.clone(),
            detail,
        }
    }

    /// See [`GgufFile::read_f32`]; the tensor's bytes come from `blocks`.
    fn read_f32(
        &self,
        tensor: &GgufTensor,
        start: u64,
        out: &mut [f32],
        blocks: &mut impl Blocks,
    ) -> Result<()> {
        let numel = tensor.numel();
        let end = start.checked_add(out.len() as u64).filter(|&e| e <= numel);
        if end.is_none() {
            return Err(self.tensor_error(
                tensor,
                format!(
                    "elements {start}..{start}+{} are outside the {numel} elements",
                    out.len()
                ),
            ));
        }
        if !tensor.ggml_type.can_dequantize() {
            return Err(Error::Unsupported {
                path: self.path.to_path_buf(),
                detail: format!(
                    "tensor `{}`: no dequantizer for ggml type {} ({})",
                    tensor.name,
                    tensor.ggml_type.name(),
                    tensor.ggml_type.id()
                ),
            });
        }
        let Some(heads) = tensor.unpermute_heads else {
            return self.decode_range(tensor, blocks, start, out);
        };
        // A permuted 2-D weight has rows of ne[0] elements; a permuted 1-D bias has rows of one element.
        let cols = if tensor.dims.len() >= 2 {
            tensor.row_len()
        } else {
            1
        };
        let rows = numel / cols.max(1);
        let heads = u64::from(heads);
        if cols == 0 || heads == 0 || !rows.is_multiple_of(2 * heads) {
            return Err(self.tensor_error(
                tensor,
                format!("{rows} rows cannot be split into {heads} rotary heads"),
            ));
        }
        let head_dim = rows / heads;
        let (mut pos, mut done) = (start, 0usize);
        while done < out.len() {
            let (row, col) = (pos / cols, pos % cols);
            let take = ((cols - col) as usize).min(out.len() - done);
            let stored = names::permuted_row(row, head_dim) * cols + col;
            self.decode_range(tensor, blocks, stored, &mut out[done..done + take])?;
            done += take;
            pos += take as u64;
        }
        Ok(())
    }

    /// Decode stored elements `start .. start + out.len()` of a tensor, fetching the blocks that cover them
    /// from `blocks` (all at once, or in pieces of at most [`Blocks::MAX_BYTES`]).
    fn decode_range<B: Blocks>(
        &self,
        tensor: &GgufTensor,
        blocks: &mut B,
        start: u64,
        out: &mut [f32],
    ) -> Result<()> {
        let ty = tensor.ggml_type;
        let (bs, ts) = (ty.block_size(), ty.type_size());
        let mut block = start / bs as u64;
        let mut skip = (start % bs as u64) as usize;
        let mut done = 0usize;
        let fail = |e: DequantError| self.tensor_error(tensor, e.to_string());
        let outside = |first: u64| {
            self.tensor_error(tensor, format!("block {first} is outside the tensor data"))
        };
        let per_fetch = (B::MAX_BYTES / ts).max(1);
        while done < out.len() {
            // The blocks covering the rest of the range, or as many as one fetch takes.
            let wanted = (skip + out.len() - done).div_ceil(bs).min(per_fetch);
            let offset = block.checked_mul(ts as u64).ok_or_else(|| outside(block))?;
            let bytes = blocks
                .fetch(offset, wanted * ts)
                .map_err(|e| e.unwrap_or_else(|| outside(block)))?;
            let mut at = 0usize;
            while at < wanted && done < out.len() {
                let left = out.len() - done;
                if skip == 0 && left >= bs {
                    // Whole blocks straight into the output.
                    let count = (left / bs).min(wanted - at);
                    let n = count * bs;
                    dequantize(
                        ty,
                        &bytes[at * ts..(at + count) * ts],
                        &mut out[done..done + n],
                    )
                    .map_err(fail)?;
                    done += n;
                    at += count;
                } else {
                    // A partial block: decode it aside and copy the part that is wanted.
                    let mut tmp = [0f32; dequant::MAX_BLOCK];
                    let tmp = &mut tmp[..bs];
                    dequantize(ty, &bytes[at * ts..(at + 1) * ts], tmp).map_err(fail)?;
                    let take = (bs - skip).min(left);
                    out[done..done + take].copy_from_slice(&tmp[skip..skip + take]);
                    done += take;
                    skip = 0;
                    at += 1;
                }
            }
            block += at as u64;
        }
        Ok(())
    }
}

/// Where the bytes of a tensor being read come from.
trait Blocks {
    /// Most bytes asked for at once.
    const MAX_BYTES: usize;
    /// Bytes `offset .. offset + len` of the tensor's data. `Err(None)` when they lie outside it.
    fn fetch(&mut self, offset: u64, len: usize) -> std::result::Result<&[u8], Option<Error>>;
}

/// A tensor's bytes in the memory map (or a file image).
struct Mapped<'a> {
    data: &'a [u8],
}

impl Blocks for Mapped<'_> {
    const MAX_BYTES: usize = usize::MAX;

    fn fetch(&mut self, offset: u64, len: usize) -> std::result::Result<&[u8], Option<Error>> {
        let s = usize::try_from(offset).ok();
        s.and_then(|s| s.checked_add(len).and_then(|e| self.data.get(s..e)))
            .ok_or(None)
    }
}

/// Bytes read with `pread` at a time by [`GgufFile::pread_f32`] (a range is read in pieces of whole blocks).
pub const PREAD_BYTES: usize = 1 << 18;

/// A tensor's bytes read from the file with `pread` into a buffer.
#[cfg(unix)]
struct Pread<'a> {
    file: &'a std::fs::File,
    path: &'a Path,
    /// The tensor's first byte in the file, and its length.
    offset: u64,
    len: u64,
    buf: &'a mut Vec<u8>,
}

#[cfg(unix)]
impl Blocks for Pread<'_> {
    const MAX_BYTES: usize = PREAD_BYTES;

    fn fetch(&mut self, offset: u64, len: usize) -> std::result::Result<&[u8], Option<Error>> {
        use std::os::unix::fs::FileExt;
        let end = offset.checked_add(len as u64).filter(|&e| e <= self.len);
        let at = self.offset.checked_add(offset);
        let (Some(_), Some(at)) = (end, at) else {
            return Err(None);
        };
        self.buf.resize(len, 0);
        self.file
            .read_exact_at(self.buf, at)
            .map_err(|e| Some(Error::io(self.path, e)))?;
        Ok(self.buf)
    }
}

/// [`GgufFile::read_f32`] on a file image already checked by [`GgufFile::parse`] (for the fuzz entry point).
pub(crate) fn read_f32_in(
    path: &Path,
    bytes: &[u8],
    tensor: &GgufTensor,
    start: u64,
    out: &mut [f32],
) -> Result<()> {
    let view = FileView { path, bytes };
    let mut blocks = Mapped {
        data: view.slice(tensor, tensor.offset, tensor.len)?,
    };
    view.read_f32(tensor, start, out, &mut blocks)
}

/// [`GgufFile::vocabulary`] of a parsed header.
pub(crate) fn vocabulary_of(
    path: &Path,
    header: &GgufHeader,
) -> Result<Option<crate::tokenizer::Vocabulary>> {
    metadata::vocabulary(path, header)
}

/// [`GgufFile::config`] of a parsed header.
pub(crate) fn config_of(header: &GgufHeader) -> crate::config::ModelConfig {
    metadata::config(header)
}

/// A bounds-checked little-endian reader over the header bytes.
struct Cursor<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
}

/// Strings end to end (each ending at its entry of `ends`), each converted on its own with invalid UTF-8
/// replaced, as a single string value is.
fn lossy_strings(text: &[u8], ends: &[usize]) -> StringList {
    let mut a = StringList::with_capacity(ends.len());
    let mut begin = 0;
    for &end in ends {
        a.push_lossy(&text[begin..end]);
        begin = end;
    }
    a
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::corrupt(self.path, detail)
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.corrupt(format!(
                "truncated: {what} at byte {} needs {n} bytes, {} left",
                self.pos,
                self.remaining()
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A length or count, checked so that `count × min_size` bytes can still follow.
    fn count(&mut self, min_size: usize, what: &str) -> Result<usize> {
        self.count_of(min_size, || what.to_string())
    }

    /// [`Cursor::count`] with the label built only for an error (strings are read by the hundred thousand).
    fn count_of(&mut self, min_size: usize, what: impl Fn() -> String) -> Result<usize> {
        let at = self.pos;
        let n = if self.remaining() >= 8 {
            self.u64("")?
        } else {
            self.u64(&what())?
        };
        let need = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(min_size));
        match need {
            Some(need) if need <= self.remaining() => Ok(n as usize),
            _ => Err(self.corrupt(format!(
                "{} {n} at byte {at} needs at least {} bytes but only {} remain",
                what(),
                (n as u128) * min_size as u128,
                self.remaining()
            ))),
        }
    }

    fn bytes_string(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.count_of(1, || format!("{what} length"))?;
        self.take(n, what)
    }

    /// `n` strings (the elements of an array of strings), each its length and bytes: one copy of all the bytes
    /// and one UTF-8 check over them (a vocabulary holds a few hundred thousand short strings).
    fn strings(&mut self, n: usize, key: &str) -> Result<StringList> {
        // Find where the strings end, checking each length against the bytes left.
        let (start, mut total) = (self.pos, 0usize);
        let mut ends = Vec::with_capacity(n);
        for _ in 0..n {
            let rest = &self.bytes[self.pos..];
            let len = rest
                .first_chunk::<8>()
                .map(|l| u64::from_le_bytes(*l))
                .and_then(|l| usize::try_from(l).ok())
                .filter(|&l| l <= rest.len() - 8);
            let Some(len) = len else {
                // Truncated: the single-string reader says how.
                self.bytes_string(key)?;
                return Err(self.corrupt(format!("metadata `{key}`: truncated string")));
            };
            self.pos += 8 + len;
            total += len;
            ends.push(total);
        }
        // Most strings are short: each is copied as one 16-byte move where the file and the buffer have 16
        // bytes there (the bytes past its end are overwritten by the next string, or cut off at the end),
        // instead of a call to `memcpy` per string.
        const SHORT: usize = 16;
        let mut text = vec![0u8; total + SHORT];
        let mut at = start;
        let mut begin = 0;
        for &end in &ends {
            let len = end - begin;
            let from = at + 8;
            match (
                self.bytes.get(from..from + SHORT),
                text.get_mut(begin..begin + SHORT),
            ) {
                (Some(src), Some(dst)) if len <= SHORT => dst.copy_from_slice(src),
                _ => text[begin..end].copy_from_slice(&self.bytes[from..from + len]),
            }
            at = from + len;
            begin = end;
        }
        text.truncate(total);
        // The strings are valid UTF-8 each exactly when their concatenation is and every one ends on a
        // character boundary of it. Otherwise each string is converted on its own, as a single string is.
        // The check runs before anything else can start, over 1.5 MB for a 50,000-token vocabulary whose text
        // is dense with two-byte characters (`Ġ`), where std's check is slow: simdutf8's is several times
        // faster and gives the same verdict.
        if simdutf8::basic::from_utf8(&text).is_ok() {
            // SAFETY: `text` was checked to be valid UTF-8 just above and is not changed in between.
            let text = unsafe { String::from_utf8_unchecked(text) };
            match StringList::from_parts(text, ends) {
                Ok(list) => return Ok(list),
                Err((text, ends)) => return Ok(lossy_strings(text.as_bytes(), &ends)),
            }
        }
        Ok(lossy_strings(&text, &ends))
    }

    fn strict_string(&mut self, what: &str) -> Result<String> {
        let at = self.pos;
        let b = self.bytes_string(what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| self.corrupt(format!("{what} at byte {at} is not valid UTF-8")))
    }

    fn value(&mut self, ty: u32, depth: u32, key: &str) -> Result<GgufValue> {
        Ok(match ty {
            0 => GgufValue::U8(self.array::<1>(key)?[0]),
            1 => GgufValue::I8(self.array::<1>(key)?[0] as i8),
            2 => GgufValue::U16(u16::from_le_bytes(self.array(key)?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array(key)?)),
            4 => GgufValue::U32(self.u32(key)?),
            5 => GgufValue::I32(i32::from_le_bytes(self.array(key)?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array(key)?)),
            7 => GgufValue::Bool(self.array::<1>(key)?[0] != 0),
            8 => GgufValue::String(String::from_utf8_lossy(self.bytes_string(key)?).into_owned()),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.corrupt(format!(
                        "metadata `{key}`: arrays nested deeper than {MAX_ARRAY_DEPTH}"
                    )));
                }
                let at = self.pos;
                let elem = self.u32(key)?;
                let min = value_min_size(elem).ok_or_else(|| {
                    self.corrupt(format!(
                        "metadata `{key}`: unknown array element type {elem} at byte {at}"
                    ))
                })?;
                let n = self.count(min, &format!("metadata `{key}` array length"))?;
                if elem == 8 {
                    return Ok(GgufValue::StringArray(Box::new(self.strings(n, key)?)));
                }
                // Numbers and booleans: all the bytes at once (a vocabulary's token types and scores).
                if let Some(size) = value_min_size(elem).filter(|_| !matches!(elem, 8 | 9)) {
                    let bytes = self.take(n * size, key)?;
                    return Ok(GgufValue::Array(numbers(elem, bytes)));
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.value(elem, depth + 1, key)?);
                }
                GgufValue::Array(v)
            }
            10 => GgufValue::U64(self.u64(key)?),
            11 => GgufValue::I64(i64::from_le_bytes(self.array(key)?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array(key)?)),
            _ => return Err(self.corrupt(format!("metadata `{key}`: unknown value type {ty}"))),
        })
    }
}

/// The elements of an array of numbers or booleans of type `ty` (0–7, 10–12), from exactly their bytes.
fn numbers(ty: u32, bytes: &[u8]) -> Vec<GgufValue> {
    fn each<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> GgufValue) -> Vec<GgufValue> {
        bytes
            .chunks_exact(N)
            .map(|c| f(c.first_chunk::<N>().copied().unwrap_or([0; N])))
            .collect()
    }
    match ty {
        0 => each(bytes, |[b]| GgufValue::U8(b)),
        1 => each(bytes, |[b]| GgufValue::I8(b as i8)),
        2 => each(bytes, |b| GgufValue::U16(u16::from_le_bytes(b))),
        3 => each(bytes, |b| GgufValue::I16(i16::from_le_bytes(b))),
        4 => each(bytes, |b| GgufValue::U32(u32::from_le_bytes(b))),
        5 => each(bytes, |b| GgufValue::I32(i32::from_le_bytes(b))),
        6 => each(bytes, |b| GgufValue::F32(f32::from_le_bytes(b))),
        7 => each(bytes, |[b]| GgufValue::Bool(b != 0)),
        10 => each(bytes, |b| GgufValue::U64(u64::from_le_bytes(b))),
        11 => each(bytes, |b| GgufValue::I64(i64::from_le_bytes(b))),
        12 => each(bytes, |b| GgufValue::F64(f64::from_le_bytes(b))),
        _ => Vec::new(),
    }
}

/// Smallest encoding of a value of type `ty`: what each array element needs at least.
fn value_min_size(ty: u32) -> Option<usize> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10 | 11 | 12 => 8,
        9 => 12,
        _ => return None,
    })
}

/// `context`: the first part's header, for a later part of a split model (see [`GgufFile::open_part`]).
fn parse_header(path: &Path, bytes: &[u8], context: Option<&GgufHeader>) -> Result<GgufHeader> {
    let mut c = Cursor {
        path,
        bytes,
        pos: 0,
    };
    let magic = c.array::<4>("magic")?;
    if magic != MAGIC {
        return Err(c.corrupt(format!("bad magic {magic:02x?}: not a GGUF file")));
    }
    let version = c.u32("version")?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(Error::Unsupported {
                path: path.into(),
                detail: "GGUF version 1 (32-bit counts)".into(),
            })
        }
        v if matches!(v.swap_bytes(), 2 | 3) => {
            return Err(Error::Unsupported {
                path: path.into(),
                detail: "big-endian GGUF".into(),
            });
        }
        v => {
            return Err(Error::Unsupported {
                path: path.into(),
                detail: format!("GGUF version {v}"),
            })
        }
    }
    // Smallest tensor info: name length (8), n_dims (4), type (4), offset (8).
    let n_tensors = c.count(24, "tensor count")?;
    // Smallest key/value: key length (8), value type (4), one byte of value.
    let n_kv = c.count(13, "metadata count")?;

    let mut metadata: Vec<(String, GgufValue)> = Vec::with_capacity(n_kv);
    let mut keys = std::collections::HashSet::with_capacity(n_kv);
    for i in 0..n_kv {
        let key = c.strict_string(&format!("metadata key {i}"))?;
        if !keys.insert(key.clone()) {
            return Err(c.corrupt(format!("duplicate metadata key `{key}`")));
        }
        let ty = c.u32(&key)?;
        let value = c.value(ty, 0, &key)?;
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, v)) => match v.as_u64() {
            Some(a) if a.is_power_of_two() => a,
            _ => return Err(c.corrupt(format!("general.alignment {v:?} is not a power of two"))),
        },
    };
    let inherited: &[(String, GgufValue)] = context.map_or(&[], |h| &h.metadata);
    let arch = metadata
        .iter()
        .chain(inherited)
        .find(|(k, _)| k == "general.architecture")
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("")
        .to_string();

    struct Info {
        name: String,
        dims: Vec<u64>,
        ty: GgmlType,
        rel: u64,
        len: u64,
    }
    let mut infos: Vec<Info> = Vec::with_capacity(n_tensors);
    let mut seen = std::collections::HashSet::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let name = c.strict_string(&format!("tensor {i} name"))?;
        if !seen.insert(name.clone()) {
            return Err(c.corrupt(format!("duplicate tensor name `{name}`")));
        }
        let n_dims = c.u32(&name)?;
        if n_dims > MAX_DIMS {
            return Err(c.corrupt(format!(
                "tensor `{name}`: {n_dims} dimensions (at most {MAX_DIMS})"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64(&name)?);
        }
        let type_id = c.u32(&name)?;
        let ty = GgmlType::from_id(type_id).ok_or_else(|| Error::Unsupported {
            path: path.into(),
            detail: format!("tensor `{name}`: unknown ggml type {type_id}"),
        })?;
        let rel = c.u64(&name)?;
        let numel = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let Some(numel) = numel else {
            return Err(c.corrupt(format!("tensor `{name}`: dimensions {dims:?} overflow")));
        };
        let bs = ty.block_size() as u64;
        if dims.first().copied().unwrap_or(1) % bs != 0 {
            return Err(c.corrupt(format!(
                "tensor `{name}`: row length {} is not a multiple of the {} block size {bs}",
                dims.first().copied().unwrap_or(1),
                ty.name()
            )));
        }
        let len = (numel / bs).checked_mul(ty.type_size() as u64);
        let Some(len) = len else {
            return Err(c.corrupt(format!("tensor `{name}`: byte size of {dims:?} overflows")));
        };
        if rel % alignment != 0 {
            return Err(c.corrupt(format!(
                "tensor `{name}`: offset {rel} is not a multiple of alignment {alignment}"
            )));
        }
        infos.push(Info {
            name,
            dims,
            ty,
            rel,
            len,
        });
    }

    let header_end = c.pos as u64;
    let data_offset = header_end.div_ceil(alignment).saturating_mul(alignment);
    let file_len = bytes.len() as u64;
    let heads = HeadCounts::new(&metadata, inherited, &arch);
    let mut tensors = Vec::with_capacity(infos.len());
    for Info {
        name,
        dims,
        ty,
        rel,
        len,
    } in infos
    {
        let offset = data_offset.checked_add(rel);
        let end = offset.and_then(|o| o.checked_add(len));
        let (Some(offset), Some(end)) = (offset, end) else {
            return Err(Error::corrupt(
                path,
                format!("tensor `{name}`: data offset {rel} overflows"),
            ));
        };
        if end > file_len {
            return Err(Error::corrupt(
                path,
                format!("tensor `{name}`: data at bytes {offset}..{end} lies beyond the end of the file ({file_len} bytes)"),
            ));
        }
        let unpermute_heads = heads.for_tensor(path, &name, &dims)?;
        tensors.push(GgufTensor {
            hf_name: names::hf_name(&arch, &name),
            ggml_type: ty,
            shape: dims.iter().rev().copied().collect(),
            dims,
            offset,
            len,
            unpermute_heads,
            name,
        });
    }
    Ok(GgufHeader {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}

/// `<arch>.attention.head_count` and `head_count_kv`, each a number or a per-layer array.
struct HeadCounts<'a> {
    arch: &'a str,
    q: Option<&'a GgufValue>,
    kv: Option<&'a GgufValue>,
}

impl<'a> HeadCounts<'a> {
    /// From the file's own metadata, else the `inherited` keys of a split model's first part.
    fn new(
        metadata: &'a [(String, GgufValue)],
        inherited: &'a [(String, GgufValue)],
        arch: &'a str,
    ) -> Self {
        let get = |suffix: &str| {
            let key = format!("{arch}.{suffix}");
            metadata
                .iter()
                .chain(inherited)
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
        };
        HeadCounts {
            arch,
            q: get("attention.head_count"),
            kv: get("attention.head_count_kv"),
        }
    }

    fn layer(v: Option<&GgufValue>, layer: usize) -> Option<u64> {
        match v? {
            GgufValue::Array(a) => a.get(layer)?.as_u64(),
            v => v.as_u64(),
        }
    }

    /// The head count to undo the rotary permutation of this tensor with, if it carries one.
    fn for_tensor(&self, path: &Path, name: &str, dims: &[u64]) -> Result<Option<u32>> {
        let Some((role, layer)) = names::permuted_role(self.arch, name) else {
            return Ok(None);
        };
        let rows = match dims {
            [rows] => *rows,
            [_, rows] => *rows,
            _ => return Ok(None),
        };
        let heads = match role {
            names::QkRole::Query => Self::layer(self.q, layer),
            names::QkRole::Key => {
                Self::layer(self.kv, layer).or_else(|| Self::layer(self.q, layer))
            }
        };
        match heads.and_then(|h| u32::try_from(h).ok()) {
            Some(h) if h > 0 && rows % (2 * u64::from(h)) == 0 => Ok(Some(h)),
            h => Err(Error::corrupt(
                path,
                format!(
                    "tensor `{name}`: {rows} rows cannot be split into {} rotary heads ({}.attention.head_count{}), \
                     needed to undo llama.cpp's Q/K permutation",
                    h.map_or("missing".to_string(), |h| h.to_string()),
                    self.arch,
                    if role == names::QkRole::Key { "_kv" } else { "" }
                ),
            )),
        }
    }
}
