//! Safetensors reading against real files written by the `safetensors` crate, and every malformed-file case
//! producing the right typed error with the file's name in the message.

use half::{bf16, f16};
use provsearch_formats::dtype::Dtype;
use provsearch_formats::safetensors::SafetensorsFile;
use provsearch_formats::Error;
use safetensors::tensor::TensorView;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod common;
use common::test_models;

fn le<T: Copy, const N: usize>(values: &[T], to: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|v| to(*v)).collect()
}

/// A file with one tensor of each common dtype, written by the safetensors crate.
fn write_mixed(dir: &Path) -> PathBuf {
    let f32s = le(&[1.0f32, -2.5, 3.25, 0.0, 7.0, -8.0], f32::to_le_bytes);
    let f16s = le(
        &[f16::from_f32(0.5), f16::from_f32(-1.5), f16::from_f32(2.0)],
        f16::to_le_bytes,
    );
    let bf16s = le(
        &[bf16::from_f32(-0.375), bf16::from_f32(96.0)],
        bf16::to_le_bytes,
    );
    let i8s: Vec<u8> = [-128i8, -1, 0, 127].iter().map(|v| *v as u8).collect();
    let tensors = vec![
        (
            "model.w_f32",
            TensorView::new(safetensors::Dtype::F32, vec![2, 3], &f32s).unwrap(),
        ),
        (
            "model.w_f16",
            TensorView::new(safetensors::Dtype::F16, vec![3], &f16s).unwrap(),
        ),
        (
            "model.w_bf16",
            TensorView::new(safetensors::Dtype::BF16, vec![1, 2], &bf16s).unwrap(),
        ),
        (
            "model.w_i8",
            TensorView::new(safetensors::Dtype::I8, vec![2, 2], &i8s).unwrap(),
        ),
    ];
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let path = dir.join("mixed.safetensors");
    safetensors::serialize_to_file(tensors, Some(meta), &path).unwrap();
    path
}

/// A raw file image: 8-byte length, header text, data.
fn write_raw(dir: &Path, name: &str, header: &str, data: &[u8]) -> PathBuf {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Opening must fail; the message must name the file.
fn open_err(path: &Path) -> Error {
    let e = SafetensorsFile::open(path).expect_err("a malformed file must be refused");
    assert_eq!(e.path(), path);
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        e.to_string().contains(&*name),
        "message does not name the file: {e}"
    );
    e
}

#[test]
fn reads_f32_f16_bf16_i8() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_mixed(dir.path());
    let file = SafetensorsFile::open(&path).unwrap();
    assert_eq!(file.path(), path);
    assert_eq!(file.metadata(), &[("format".to_string(), "pt".to_string())]);

    let t = file.tensors();
    assert_eq!(t.len(), 4);
    assert!(
        t.windows(2).all(|w| w[0].offset + w[0].len <= w[1].offset),
        "not sorted by offset: {t:?}"
    );
    let raw = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(raw[..8].try_into().unwrap());
    assert_eq!(t[0].offset, 8 + header_len, "offsets must be absolute");

    let get = |n: &str| file.tensor(n).unwrap_or_else(|| panic!("{n} missing"));
    let w = get("model.w_f32");
    assert_eq!(
        (w.dtype, w.shape.clone(), w.numel(), w.len),
        (Dtype::F32, vec![2, 3], 6, 24)
    );
    assert_eq!(
        file.bytes(w),
        &raw[w.offset as usize..(w.offset + 24) as usize]
    );
    let mut out = [0f32; 6];
    file.read_f32(w, 0, &mut out).unwrap();
    assert_eq!(out, [1.0, -2.5, 3.25, 0.0, 7.0, -8.0]);
    let mut mid = [0f32; 2];
    file.read_f32(w, 3, &mut mid).unwrap();
    assert_eq!(mid, [0.0, 7.0]);

    let mut h = [0f32; 3];
    file.read_f32(get("model.w_f16"), 0, &mut h).unwrap();
    assert_eq!(h, [0.5, -1.5, 2.0]);
    let mut b = [0f32; 1];
    file.read_f32(get("model.w_bf16"), 1, &mut b).unwrap();
    assert_eq!(b, [96.0]);
    let mut i = [0f32; 4];
    file.read_f32(get("model.w_i8"), 0, &mut i).unwrap();
    assert_eq!(i, [-128.0, -1.0, 0.0, 127.0]);
    assert_eq!(get("model.w_i8").dtype, Dtype::I8);
}

#[test]
fn read_f32_out_of_range_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = SafetensorsFile::open(&write_mixed(dir.path())).unwrap();
    let w = file.tensor("model.w_f32").unwrap().clone();
    for (start, n) in [
        (0u64, 7usize),
        (6, 1),
        (5, 2),
        (u64::MAX, 1),
        (u64::MAX - 1, 3),
    ] {
        let mut out = vec![0f32; n];
        let e = file
            .read_f32(&w, start, &mut out)
            .expect_err("out of range");
        assert!(
            matches!(&e, Error::Tensor { tensor, .. } if tensor == "model.w_f32"),
            "{e:?}"
        );
        assert!(e.to_string().contains("out of range"), "{e}");
    }
    // Empty reads at the end are fine.
    file.read_f32(&w, 6, &mut []).unwrap();
    // A TensorInfo that does not belong to this file errors instead of panicking.
    let mut alien = w.clone();
    alien.offset = 1 << 40;
    assert!(file.read_f32(&alien, 0, &mut [0.0]).is_err());
    assert!(file.bytes(&alien).is_empty());
}

#[test]
fn truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(write_mixed(dir.path())).unwrap();

    let empty = dir.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    let e = open_err(&empty);
    assert!(
        matches!(e, Error::Corrupt { .. }) && e.to_string().contains("shorter than"),
        "{e}"
    );

    let short = dir.path().join("short.safetensors");
    std::fs::write(&short, &good[..5]).unwrap();
    assert!(matches!(open_err(&short), Error::Corrupt { .. }));

    // Cut inside the header: the declared header length now runs past the end.
    let cut_header = dir.path().join("cut_header.safetensors");
    std::fs::write(&cut_header, &good[..20]).unwrap();
    let e = open_err(&cut_header);
    assert!(
        matches!(e, Error::Corrupt { .. }) && e.to_string().contains("beyond the end"),
        "{e}"
    );

    // Cut inside the data: some tensor's range is out of range.
    let cut_data = dir.path().join("cut_data.safetensors");
    std::fs::write(&cut_data, &good[..good.len() - 3]).unwrap();
    let e = open_err(&cut_data);
    assert!(
        matches!(e, Error::Corrupt { .. }) && e.to_string().contains("out of range"),
        "{e}"
    );
}

#[test]
fn header_length_beyond_file_or_absurd() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(write_mixed(dir.path())).unwrap();
    let beyond = dir.path().join("beyond.safetensors");
    let n = bytes.len() as u64;
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    std::fs::write(&beyond, &bytes).unwrap();
    let e = open_err(&beyond);
    assert!(
        matches!(e, Error::Corrupt { .. }) && e.to_string().contains("beyond the end"),
        "{e}"
    );

    let absurd = dir.path().join("absurd.safetensors");
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&absurd, &bytes).unwrap();
    let e = open_err(&absurd);
    assert!(
        matches!(e, Error::Corrupt { .. }) && e.to_string().contains("absurd"),
        "{e}"
    );
}

#[test]
fn overlapping_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    let path = write_raw(dir.path(), "overlap.safetensors", header, &[0; 12]);
    let e = open_err(&path);
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Corrupt { .. }) && msg.contains("overlap"),
        "{msg}"
    );
    assert!(msg.contains("`a`") && msg.contains("`b`"), "{msg}");
}

#[test]
fn out_of_range_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    let path = write_raw(dir.path(), "range.safetensors", header, &[0; 12]);
    let e = open_err(&path);
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Corrupt { .. }) && msg.contains("out of range") && msg.contains("`a`"),
        "{msg}"
    );

    let header = r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[9,2]}}"#;
    let path = write_raw(dir.path(), "reversed.safetensors", header, &[0; 12]);
    let e = open_err(&path);
    assert!(
        matches!(e, Error::Corrupt { .. }) && e.to_string().contains("begin after end"),
        "{e}"
    );
}

#[test]
fn dtype_shape_mismatch_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"layer.0.weight":{"dtype":"BF16","shape":[3,3],"data_offsets":[0,16]}}"#;
    let path = write_raw(dir.path(), "mismatch.safetensors", header, &[0; 16]);
    let e = open_err(&path);
    assert!(
        matches!(&e, Error::Tensor { tensor, .. } if tensor == "layer.0.weight"),
        "{e:?}"
    );
    assert!(e.to_string().contains("mismatch"), "{e}");

    let header = r#"{"big":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#;
    let path = write_raw(dir.path(), "overflow.safetensors", header, &[0; 8]);
    let e = open_err(&path);
    assert!(
        matches!(&e, Error::Tensor { tensor, .. } if tensor == "big")
            && e.to_string().contains("overflow")
    );
}

#[test]
fn unknown_dtype_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"q":{"dtype":"F3","shape":[8],"data_offsets":[0,3]}}"#;
    let path = write_raw(dir.path(), "f3.safetensors", header, &[0; 3]);
    let e = open_err(&path);
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    assert!(
        e.to_string().contains("`F3`") && e.to_string().contains("`q`"),
        "{e}"
    );
}

/// OCP microscaling checkpoints (FP4/FP6 elements, E8M0 block scales) and complex rotary buffers open, as the
/// safetensors crate writes them: their tensors are listed with their dtypes, E8M0 scales read as powers of
/// two, and the packed or complex ones refuse to be read as values instead of giving wrong numbers.
#[test]
fn microscaling_and_complex_dtypes_open_and_read_only_as_far_as_they_can() {
    let dir = tempfile::tempdir().unwrap();
    let scales = [127u8, 128, 120, 255];
    let f4 = [0x21u8, 0x43, 0x65];
    let f6 = [0u8; 6];
    let c64 = le(&[1.0f32, 0.0], f32::to_le_bytes);
    let w = le(&[0.5f32, -0.25], f32::to_le_bytes);
    let tensors = vec![
        (
            "blocks",
            TensorView::new(safetensors::Dtype::F4, vec![2, 3], &f4).unwrap(),
        ),
        (
            "scales",
            TensorView::new(safetensors::Dtype::F8_E8M0, vec![4], &scales).unwrap(),
        ),
        (
            "six",
            TensorView::new(safetensors::Dtype::F6_E2M3, vec![8], &f6).unwrap(),
        ),
        (
            "freqs",
            TensorView::new(safetensors::Dtype::C64, vec![1], &c64).unwrap(),
        ),
        (
            "w",
            TensorView::new(safetensors::Dtype::F32, vec![2], &w).unwrap(),
        ),
    ];
    let path = dir.path().join("mx.safetensors");
    safetensors::serialize_to_file(tensors, None, &path).unwrap();
    let file = SafetensorsFile::open(&path).unwrap();
    let info = |name: &str| file.tensor(name).unwrap();
    assert_eq!((info("blocks").dtype, info("blocks").len), (Dtype::F4, 3));
    assert_eq!((info("six").dtype, info("six").len), (Dtype::F6E2M3, 6));
    assert_eq!((info("freqs").dtype, info("freqs").len), (Dtype::C64, 8));

    let mut out = [0f32; 4];
    file.read_f32(info("scales"), 0, &mut out).unwrap();
    assert_eq!(out[..3], [1.0, 2.0, 2f32.powi(-7)]);
    assert!(out[3].is_nan(), "E8M0 0xff is NaN");
    let mut two = [0f32; 2];
    file.read_f32(info("w"), 0, &mut two).unwrap();
    assert_eq!(two, [0.5, -0.25]);
    for name in ["blocks", "six", "freqs"] {
        let e = file.read_f32(info(name), 0, &mut out[..1]).unwrap_err();
        assert!(e.to_string().contains("cannot be read as values"), "{e}");
    }

    // An odd count of 4-bit elements does not fill whole bytes.
    let header = r#"{"q":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#;
    let path = write_raw(dir.path(), "f4-odd.safetensors", header, &[0; 2]);
    let e = open_err(&path);
    assert!(
        matches!(&e, Error::Tensor { tensor, .. } if tensor == "q")
            && e.to_string().contains("do not fill whole bytes"),
        "{e}"
    );
}

#[test]
fn malformed_json_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_raw(
        dir.path(),
        "json.safetensors",
        "{\"a\": {\"dtype\": \"F32\",",
        &[],
    );
    let e = open_err(&path);
    assert!(matches!(e, Error::Json { .. }), "{e:?}");
    assert!(e.to_string().contains("line 1 column"), "{e}");

    let path = write_raw(dir.path(), "array.safetensors", "[1, 2]", &[]);
    assert!(matches!(open_err(&path), Error::Json { .. }));

    let header = r#"{"a":{"dtype":"F32","shape":[1]}}"#;
    let path = write_raw(dir.path(), "nooffsets.safetensors", header, &[0; 4]);
    let e = open_err(&path);
    assert!(
        matches!(e, Error::Json { .. }) && e.to_string().contains("data_offsets"),
        "{e}"
    );

    let header = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
    let path = write_raw(dir.path(), "dup.safetensors", header, &[0; 2]);
    assert!(open_err(&path).to_string().contains("listed twice"));
}

#[test]
fn missing_file_is_io() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_err(&dir.path().join("absent.safetensors"));
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
}

/// The real all-MiniLM-L6-v2 checkpoint, when fetched.
#[test]
fn real_minilm_checkpoint() {
    let path = test_models().join("minilm/model.safetensors");
    let file = SafetensorsFile::open(&path).unwrap();
    let emb = file
        .tensor("embeddings.word_embeddings.weight")
        .expect("embedding tensor");
    assert_eq!(emb.shape, vec![30522, 384]);
    assert_eq!(emb.dtype, Dtype::F32);
    let mut row = vec![0f32; 384];
    file.read_f32(emb, 384 * 1000, &mut row).unwrap();
    assert!(row.iter().all(|v| v.is_finite()) && row.iter().any(|v| *v != 0.0));
    assert!(file.tensors().len() > 50);
}
