//! Tests of the quantized-safetensors reader: hand-packed words with known values, round trips through the
//! layouts written by `datasets::quantize`, and the fallback for unsupported variants.

use super::*;
use crate::signals::weight_signals;
use datasets::quantize::{write_quantized, Scheme};
use datasets::synth::{build, Family, Spec};
use safetensors::tensor::{Dtype as StDtype, TensorView};
use serde_json::{json, Value};
use std::sync::Mutex;

pub(super) type Raw = (&'static str, StDtype, Vec<usize>, Vec<u8>);

pub(super) fn write(dir: &Path, tensors: &[Raw], config: &str) -> Box<dyn WeightSource> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let path = dir.join("model.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    open(&[path], dir).unwrap()
}

fn words(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn halfs(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
        .collect()
}

pub(super) fn read_all(src: &dyn WeightSource, name: &str) -> Vec<f32> {
    let i = src.tensors().iter().position(|t| t.name == name).unwrap();
    let mut v = vec![0f32; src.tensors()[i].numel() as usize];
    src.read_f32(i, 0, &mut v).unwrap();
    v
}

#[test]
fn gptq_v1_adds_one_to_stored_zero_points() {
    // 8 inputs × 8 outputs, 4-bit, one group: every column holds codes 0..7 down the inputs, every stored
    // zero point is 3 (so 4), every scale 0.5: W[n][k] = 0.5 · (k − 4).
    let tmp = tempfile::tempdir().unwrap();
    let src = write(
        tmp.path(),
        &[
            (
                "l.qweight",
                StDtype::I32,
                vec![1, 8],
                words(&[0x7654_3210; 8]),
            ),
            ("l.qzeros", StDtype::I32, vec![1, 1], words(&[0x3333_3333])),
            ("l.scales", StDtype::F16, vec![1, 8], halfs(&[0.5; 8])),
            ("l.bias", StDtype::F16, vec![8], halfs(&[0.25; 8])),
        ],
        r#"{"quantization_config":{"quant_method":"gptq","bits":4,"group_size":-1}}"#,
    );
    let names: Vec<&str> = src.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["l.bias", "l.weight"]);
    assert_eq!(src.tensors()[1].shape, [8, 8]);
    assert_eq!(src.quantization().as_deref(), Some("gptq-4bit"));
    let w = read_all(src.as_ref(), "l.weight");
    for n in 0..8 {
        let row: Vec<f32> = (0..8).map(|k| 0.5 * (k as f32 - 4.0)).collect();
        assert_eq!(&w[n * 8..n * 8 + 8], row.as_slice());
    }
    // A range in the middle of a row, and one past the end.
    let mut two = [0f32; 2];
    src.read_f32(1, 13, &mut two).unwrap();
    assert_eq!(two, [0.5 * (5.0 - 4.0), 0.5 * (6.0 - 4.0)]);
    assert!(src.read_f32(1, 63, &mut two).is_err());
}

#[test]
fn awq_columns_follow_the_reverse_order() {
    // One input × 8 outputs, the word 0x76543210 (nibble i = i), zero 0, scale 1: column j reads nibble
    // [0, 4, 1, 5, 2, 6, 3, 7][j].
    let tmp = tempfile::tempdir().unwrap();
    let src = write(
        tmp.path(),
        &[
            ("l.qweight", StDtype::I32, vec![1, 1], words(&[0x7654_3210])),
            ("l.qzeros", StDtype::I32, vec![1, 1], words(&[0])),
            ("l.scales", StDtype::F16, vec![1, 8], halfs(&[1.0; 8])),
        ],
        r#"{"quantization_config":{"quant_method":"awq","bits":4,"group_size":128,"version":"gemm"}}"#,
    );
    assert_eq!(src.quantization().as_deref(), Some("awq-4bit"));
    assert_eq!(
        read_all(src.as_ref(), "l.weight"),
        [0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]
    );
}

#[test]
fn bnb4_reads_the_high_nibble_first() {
    let tmp = tempfile::tempdir().unwrap();
    let map: Vec<f32> = (0..16).map(|i| i as f32).collect();
    let state =
        br#"{"quant_type": "nf4", "blocksize": 2, "dtype": "float16", "shape": [2, 2]}"#.to_vec();
    let src = write(
        tmp.path(),
        &[
            ("l.weight", StDtype::U8, vec![2, 1], vec![0xF1, 0x23]),
            (
                "l.weight.absmax",
                StDtype::F32,
                vec![2],
                [1f32, 10.0].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            (
                "l.weight.quant_map",
                StDtype::F32,
                vec![16],
                map.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            (
                "l.weight.quant_state.bitsandbytes__nf4",
                StDtype::U8,
                vec![state.len()],
                state.clone(),
            ),
        ],
        r#"{}"#,
    );
    assert_eq!(src.quantization().as_deref(), Some("bnb-nf4"));
    assert_eq!(read_all(src.as_ref(), "l.weight"), [15.0, 1.0, 20.0, 30.0]);
}

/// Every layer matrix of the quantized copy reads back as the source matrix, within `tolerance` × its RMS.
fn round_trip(scheme: Scheme, label: &str, tolerance: f64) {
    let ckpt = build(&Spec::small(Family::Llama, 3));
    let tmp = tempfile::tempdir().unwrap();
    write_quantized(&ckpt, tmp.path(), scheme).unwrap();
    let src = open(&[tmp.path().join("model.safetensors")], tmp.path()).unwrap();
    assert_eq!(src.quantization().as_deref(), Some(label), "{scheme:?}");
    let names: Vec<&str> = src.tensors().iter().map(|t| t.name.as_str()).collect();
    let want: Vec<&str> = ckpt.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names, want,
        "{scheme:?}: the logical tensors are the source's"
    );
    for t in &ckpt.tensors {
        let meta = src.tensors().iter().find(|m| m.name == t.name).unwrap();
        assert!(meta.is_weight);
        assert_eq!(
            meta.shape,
            t.shape.iter().map(|&d| d as u64).collect::<Vec<_>>()
        );
        let got = read_all(src.as_ref(), &t.name);
        let rms =
            (t.data.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / t.data.len() as f64).sqrt();
        let err = (t
            .data
            .iter()
            .zip(&got)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum::<f64>()
            / t.data.len() as f64)
            .sqrt();
        let bound = if datasets::quantize::is_quantized_layer(t) {
            tolerance
        } else {
            4e-3 // F16 or BF16 storage
        };
        assert!(
            err <= bound * rms,
            "{scheme:?} {}: error {err} vs rms {rms}",
            t.name
        );
    }
    assert!(
        src.notes().iter().any(|n| n.contains(label)),
        "{:?}",
        src.notes()
    );
}

#[test]
fn gptq_round_trips_at_every_width_with_and_without_act_order() {
    for (bits, tol) in [(2, 0.6), (3, 0.25), (4, 0.12), (8, 0.01)] {
        for act_order in [false, true] {
            let scheme = Scheme::Gptq {
                bits,
                group: 32,
                act_order,
                g_idx: true,
            };
            round_trip(scheme, &format!("gptq-{bits}bit"), tol);
        }
    }
}

#[test]
fn awq_bnb_and_fp8_round_trip() {
    round_trip(Scheme::Awq { group: 32 }, "awq-4bit", 0.12);
    round_trip(Scheme::Bnb8, "bnb-int8", 0.02);
    round_trip(
        Scheme::Bnb4 {
            fp4: false,
            blocksize: 64,
            nested: false,
        },
        "bnb-nf4",
        0.15,
    );
    round_trip(
        Scheme::Bnb4 {
            fp4: false,
            blocksize: 64,
            nested: true,
        },
        "bnb-nf4",
        0.15,
    );
    round_trip(
        Scheme::Bnb4 {
            fp4: true,
            blocksize: 64,
            nested: true,
        },
        "bnb-fp4",
        0.2,
    );
    round_trip(Scheme::Fp8Block { block: 32 }, "fp8-e4m3", 0.05);
    round_trip(Scheme::Fp8Tensor, "fp8-e4m3", 0.08);
}

/// A source that records which tensors were read.
struct Recording<'a> {
    inner: &'a dyn WeightSource,
    read: Mutex<HashSet<usize>>,
}

impl WeightSource for Recording<'_> {
    fn tensors(&self) -> &[TensorMeta] {
        self.inner.tensors()
    }
    fn read_f32(&self, index: usize, start: u64, out: &mut [f32]) -> Result<()> {
        self.read.lock().unwrap().insert(index);
        self.inner.read_f32(index, start, out)
    }
    fn files(&self) -> Vec<PathBuf> {
        self.inner.files()
    }
}

#[test]
fn unsupported_variants_fall_back_to_full_precision_tensors() {
    let ckpt = build(&Spec::small(Family::Llama, 3));
    // Act-order without g_idx (the group of each input is unknowable), and AWQ's GEMV packing.
    let cases: [(Scheme, Option<&str>, &str); 2] = [
        (
            Scheme::Gptq {
                bits: 4,
                group: 32,
                act_order: true,
                g_idx: false,
            },
            None,
            "gptq-4bit (unsupported: act-order (desc_act) without g_idx)",
        ),
        (
            Scheme::Awq { group: 32 },
            Some("gemv"),
            "awq-4bit (unsupported: AWQ `gemv` packing)",
        ),
    ];
    for (scheme, version, label) in cases {
        let tmp = tempfile::tempdir().unwrap();
        write_quantized(&ckpt, tmp.path(), scheme).unwrap();
        if let Some(v) = version {
            let path = tmp.path().join("config.json");
            let mut config: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            config["quantization_config"]["version"] = v.into();
            std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        }
        let src = open(&[tmp.path().join("model.safetensors")], tmp.path()).unwrap();
        assert_eq!(src.quantization().as_deref(), Some(label));
        assert!(
            src.notes().iter().any(|n| n.contains("not dequantized")),
            "{:?}",
            src.notes()
        );
        // Packed parts stay listed, and none of them (codes or float scales) is a weight.
        for m in src.tensors() {
            let packed = [".qweight", ".qzeros", ".scales", ".g_idx"]
                .iter()
                .any(|s| m.name.ends_with(s));
            assert_eq!(m.is_weight, !packed, "{}", m.name);
        }
        assert!(src
            .tensors()
            .iter()
            .any(|m| m.name.ends_with("q_proj.qweight") && m.dtype == "I32"));

        let recording = Recording {
            inner: src.as_ref(),
            read: Mutex::new(HashSet::new()),
        };
        let signals = weight_signals(&recording, &[], None).unwrap();
        let read = recording.read.into_inner().unwrap();
        for &i in &read {
            assert!(
                src.tensors()[i].is_weight,
                "read non-weight {}",
                src.tensors()[i].name
            );
        }
        // The full-precision tensors were still fingerprinted: embedding, lm_head and norms.
        assert!(signals.embedding.is_some());
        assert!(!signals.norms.entries.is_empty());
        assert_eq!(
            signals
                .matrices
                .entries
                .iter()
                .filter(|e| e.layer != provsearch_index::schema::NO_LAYER)
                .count(),
            0,
            "no layer matrix can come from packed data"
        );
    }
}

#[test]
fn float_checkpoints_are_not_wrapped() {
    let ckpt = build(&Spec::small(Family::Llama, 3));
    let tmp = tempfile::tempdir().unwrap();
    ckpt.write(tmp.path(), datasets::Storage::F16, 1).unwrap();
    let src = open(&[tmp.path().join("model.safetensors")], tmp.path()).unwrap();
    assert_eq!(src.quantization(), None);
    assert!(src.notes().is_empty());
}

/// `tests/data/mlx-affine.safetensors` was written by MLX 0.32.4 itself (`mx.save_safetensors`): a `[4, 128]`
/// source matrix quantized by `mx.quantize` at 2, 3, 4, 5, 6 and 8 bits in groups of 32 and 64 (F16 scales
/// and biases), each beside `mx.dequantize`'s output. Read with the matching `quantization` declaration, every
/// layout decodes to MLX's values, also when read from the middle of a row.
#[test]
fn mlx_affine_matches_mlx_dequantize() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mlx-affine.safetensors");
    for bits in [2u32, 3, 4, 5, 6, 8] {
        for group in [32u64, 64] {
            let tmp = tempfile::tempdir().unwrap();
            let config = json!({"quantization": {"group_size": group, "bits": bits}});
            std::fs::write(tmp.path().join("config.json"), config.to_string()).unwrap();
            let src = open(std::slice::from_ref(&fixture), tmp.path()).unwrap();
            let name = format!("b{bits}g{group}");
            let reference = read_all(src.as_ref(), &format!("{name}.reference"));
            let i = src
                .tensors()
                .iter()
                .position(|t| t.name == format!("{name}.weight"))
                .unwrap();
            assert_eq!(src.tensors()[i].shape, [4, 128], "{name}");
            assert!(src.tensors()[i].is_weight);
            let mut decoded = vec![0f32; 512];
            src.read_f32(i, 0, &mut decoded).unwrap();
            assert_eq!(decoded, reference, "{name}");
            let mut middle = vec![0f32; 150];
            src.read_f32(i, 97, &mut middle).unwrap();
            assert_eq!(middle, reference[97..247], "{name} from element 97");
        }
    }
}

#[test]
fn mlx_declarations_per_module_and_unsupported_modes() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mlx-affine.safetensors");
    let open_with = |config: Value| {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("config.json"), config.to_string()).unwrap();
        open(std::slice::from_ref(&fixture), tmp.path()).unwrap()
    };
    // A mixed recipe: the model-wide setting for most modules, its own for one (all others in the fixture
    // then fail their shape check at 4 bits/64 and are reported, not guessed).
    let src = open_with(
        json!({"quantization": {"group_size": 64, "bits": 4, "b3g32": {"group_size": 32, "bits": 3}}}),
    );
    let q = src.quantization().unwrap();
    assert!(q.contains("mlx-4bit") && q.contains("mlx-3bit"), "{q}");
    let weight = |name: &str| {
        src.tensors()
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .is_weight
    };
    assert!(weight("b3g32.weight") && weight("b4g64.weight"));
    assert!(
        !weight("b8g64.weight"),
        "8-bit codes read as 4-bit do not fit: left unread"
    );
    // No declaration: nothing is guessed (4 bits in groups of 64 and 8 bits in groups of 32 pack alike).
    let src = open_with(json!({"model_type": "llama"}));
    assert!(!src
        .tensors()
        .iter()
        .any(|t| t.name.ends_with(".weight") && t.is_weight));
    assert!(
        src.notes()
            .join(" ")
            .contains("no bits/group_size declared"),
        "{:?}",
        src.notes()
    );
    // Unknown modes are named; affine data declared as a microscaled mode does not fit (F16 scales).
    let src = open_with(json!({"quantization": {"group_size": 32, "bits": 4, "mode": "int3x"}}));
    assert!(
        src.quantization().unwrap().contains("MLX `int3x` mode"),
        "{:?}",
        src.quantization()
    );
    let src = open_with(json!({"quantization": {"group_size": 32, "bits": 4, "mode": "mxfp4"}}));
    let q = src.quantization().unwrap();
    assert!(
        q.starts_with("mxfp4 (unsupported: ") && q.contains("F16"),
        "{q}"
    );
    assert!(!src
        .tensors()
        .iter()
        .any(|t| t.is_weight && t.name.ends_with(".weight")));
}

/// compressed-tensors' own example (`pack_to_int32`'s docstring): 8-bit codes [1, 2] are stored as 129 and
/// 130 in one word, 33409. A 4-bit asymmetric layer: codes and zero points (packed down the rows) in the same
/// offset form, `W = (q − z) · s`.
#[test]
fn compressed_tensors_packing_follows_the_library() {
    let tmp = tempfile::tempdir().unwrap();
    let i64s = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    // Row 0: codes −8..7 (stored 0..15 in two words); row 1: codes 7 down to −8. Zero points −1 and 2 (stored
    // 7 and 10 in one word, row 0 in the low nibble); scales 0.5 and 2.
    let src = write(
        tmp.path(),
        &[
            // Codes [1, 2, 0, 0, 0, 0, 0, 0] (stored 129, 130, then 128s): the docstring's word first.
            (
                "e.weight_packed",
                StDtype::I32,
                vec![1, 2],
                words(&[33409 | 0x8080_0000, 0x8080_8080]),
            ),
            ("e.weight_shape", StDtype::I64, vec![2], i64s(&[1, 8])),
            ("e.weight_scale", StDtype::F16, vec![1, 1], halfs(&[1.0])),
            (
                "f.weight_packed",
                StDtype::I32,
                vec![2, 2],
                words(&[0x7654_3210, 0xFEDC_BA98, 0x89AB_CDEF, 0x0123_4567]),
            ),
            ("f.weight_shape", StDtype::I64, vec![2], i64s(&[2, 16])),
            (
                "f.weight_scale",
                StDtype::F16,
                vec![2, 1],
                halfs(&[0.5, 2.0]),
            ),
            (
                "f.weight_zero_point",
                StDtype::I32,
                vec![1, 1],
                words(&[0xA7]),
            ),
        ],
        r#"{"quantization_config":{"quant_method":"compressed-tensors","format":"pack-quantized",
            "config_groups":{"group_0":{"weights":{"num_bits":4}}}}}"#,
    );
    assert_eq!(
        read_all(src.as_ref(), "e.weight"),
        [1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    let f = read_all(src.as_ref(), "f.weight");
    let expected: Vec<f32> = (-8..8)
        .map(|q| (q as f32 + 1.0) * 0.5)
        .chain((-8..8).rev().map(|q| (q as f32 - 2.0) * 2.0))
        .collect();
    assert_eq!(f, expected);
    assert_eq!(
        src.quantization().as_deref(),
        Some("compressed-tensors-4bit, compressed-tensors-8bit")
    );
}
