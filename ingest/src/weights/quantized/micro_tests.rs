//! Tests of the microscaled layouts (MXFP4, NVFP4, MXFP8): MLX's own output, and hand-packed gpt-oss,
//! compressed-tensors and ModelOpt tensors with values worked out by hand.

use super::tests::{read_all, write, Raw};
use super::*;
use safetensors::tensor::Dtype as StDtype;
use serde_json::json;

/// E2M1 value of each 4-bit code (the OCP table, written out again here rather than shared with the decoder).
fn e2m1(code: u8) -> f32 {
    let magnitude = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0][usize::from(code & 7)];
    if code & 8 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Pack codes two per byte, even element in the low nibble.
fn pack(codes: &[u8]) -> Vec<u8> {
    codes.chunks(2).map(|p| p[0] | (p[1] << 4)).collect()
}

/// `tests/data/mlx-micro.safetensors` was written by MLX 0.32.4 (`mx.quantize` of a `[4, 128]` matrix whose
/// rows differ in scale by 400×, in modes `mxfp4` (group 32), `nvfp4` (group 16) and `mxfp8` (group 32), with
/// `mx.dequantize(..., dtype=float32)` beside each). With the matching declaration each decodes to MLX's
/// values exactly, from the start and from the middle of a row.
#[test]
fn mlx_microscaled_modes_match_mlx_dequantize() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mlx-micro.safetensors");
    for (mode, group, bits) in [("mxfp4", 32, 4), ("nvfp4", 16, 4), ("mxfp8", 32, 8)] {
        let tmp = tempfile::tempdir().unwrap();
        let config = json!({"quantization": {"group_size": group, "bits": bits, "mode": mode}});
        std::fs::write(tmp.path().join("config.json"), config.to_string()).unwrap();
        let src = open(std::slice::from_ref(&fixture), tmp.path()).unwrap();
        let reference = read_all(src.as_ref(), &format!("{mode}.reference"));
        let i = src
            .tensors()
            .iter()
            .position(|t| t.name == format!("{mode}.weight"))
            .unwrap();
        assert_eq!(src.tensors()[i].shape, [4, 128], "{mode}");
        assert_eq!(src.tensors()[i].dtype, mode);
        assert!(src.tensors()[i].is_weight);
        let decoded = read_all(src.as_ref(), &format!("{mode}.weight"));
        assert_eq!(decoded, reference, "{mode}");
        let mut middle = vec![0f32; 150];
        src.read_f32(i, 97, &mut middle).unwrap();
        assert_eq!(middle, reference[97..247], "{mode} from element 97");
        assert!(src.quantization().unwrap().contains(mode));
    }
}

/// gpt-oss: blocks `[E, N, G, 16]` and scales `[E, N, G]`, read as transformers' `convert_moe_packed_tensors`
/// returns them: `[E, G·32, N]`, element `(e, k, n)` from stored row `(e, n)`, column `k`.
#[test]
fn gpt_oss_experts_read_transposed_like_transformers() {
    let (experts, n_out, groups) = (2usize, 3usize, 2usize);
    let k_in = groups * 32;
    // Code of stored (e, n, k) and the E8M0 exponent byte of each (e, n, g).
    let code = |e: usize, n: usize, k: usize| ((e * 7 + n * 5 + k * 3) % 16) as u8;
    let exponent = |e: usize, n: usize, g: usize| (124 + e * 3 + n + g) as u8;
    let mut codes = Vec::new();
    let mut scales = Vec::new();
    for e in 0..experts {
        for n in 0..n_out {
            codes.extend((0..k_in).map(|k| code(e, n, k)));
            scales.extend((0..groups).map(|g| exponent(e, n, g)));
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = write(
        tmp.path(),
        &[
            (
                "model.layers.0.mlp.experts.gate_up_proj_blocks",
                StDtype::U8,
                vec![experts, n_out, groups, 16],
                pack(&codes),
            ),
            (
                "model.layers.0.mlp.experts.gate_up_proj_scales",
                StDtype::U8,
                vec![experts, n_out, groups],
                scales,
            ),
        ],
        r#"{"quantization_config":{"quant_method":"mxfp4","modules_to_not_convert":["lm_head"]}}"#,
    );
    assert_eq!(
        src.tensors().len(),
        1,
        "blocks and scales become one weight"
    );
    let meta = &src.tensors()[0];
    assert_eq!(meta.name, "model.layers.0.mlp.experts.gate_up_proj");
    assert_eq!(meta.shape, [experts as u64, k_in as u64, n_out as u64]);
    let mut expected = Vec::new();
    for e in 0..experts {
        for k in 0..k_in {
            for n in 0..n_out {
                let scale = 2f32.powi(i32::from(exponent(e, n, k / 32)) - 127);
                expected.push(e2m1(code(e, n, k)) * scale);
            }
        }
    }
    assert_eq!(read_all(src.as_ref(), &meta.name), expected);
    let mut middle = vec![0f32; 50];
    src.read_f32(0, 101, &mut middle).unwrap();
    assert_eq!(middle, expected[101..151]);
    assert_eq!(src.quantization().as_deref(), Some("mxfp4"));
}

/// NVFP4 from compressed-tensors (`weight_global_scale` divides) and from ModelOpt (`weight_scale_2`
/// multiplies): the same codes and E4M3 group scales give `e2m1 · scale / 4` and `e2m1 · scale · 0.25`.
/// compressed-tensors `mxfp4-pack-quantized` takes uint8 E8M0 scales per 32.
#[test]
fn nvfp4_and_mxfp4_packed_rows() {
    // Two rows of 32: codes k mod 16; E4M3 scales 1.0 (0x38), 2.0 (0x40), 0.5 (0x30), 3.0 (0x44).
    let codes: Vec<u8> = (0..64).map(|k| (k % 16) as u8).collect();
    let e4m3 = vec![0x38u8, 0x40, 0x30, 0x44];
    let scale_values = [1.0f32, 2.0, 0.5, 3.0];
    let f32s = |v: f32| v.to_le_bytes().to_vec();
    let expected_nv: Vec<f32> = (0..64)
        .map(|k| e2m1(codes[k]) * scale_values[k / 16] * 0.25)
        .collect();
    let nv = |codes_name, scale_name, global: Raw, config: &str| {
        let tmp = tempfile::tempdir().unwrap();
        let src = write(
            tmp.path(),
            &[
                (codes_name, StDtype::U8, vec![2, 16], pack(&codes)),
                (scale_name, StDtype::F8_E4M3, vec![2, 2], e4m3.clone()),
                global,
            ],
            config,
        );
        (tmp, src)
    };
    let (_t1, ct) = nv(
        "l.weight_packed",
        "l.weight_scale",
        ("l.weight_global_scale", StDtype::F32, vec![1], f32s(4.0)),
        r#"{"quantization_config":{"quant_method":"compressed-tensors","format":"nvfp4-pack-quantized"}}"#,
    );
    assert_eq!(read_all(ct.as_ref(), "l.weight"), expected_nv);
    let (_t2, mo) = nv(
        "l.weight",
        "l.weight_scale",
        ("l.weight_scale_2", StDtype::F32, vec![], f32s(0.25)),
        r#"{"quantization_config":{"quant_method":"modelopt","quant_algo":"NVFP4"}}"#,
    );
    assert_eq!(read_all(mo.as_ref(), "l.weight"), expected_nv);
    assert_eq!(mo.tensors().len(), 1);
    assert_eq!(mo.quantization().as_deref(), Some("nvfp4"));

    let tmp = tempfile::tempdir().unwrap();
    let mx = write(
        tmp.path(),
        &[
            ("l.weight_packed", StDtype::U8, vec![2, 16], pack(&codes)),
            ("l.weight_scale", StDtype::U8, vec![2, 1], vec![127, 130]),
        ],
        r#"{"quantization_config":{"quant_method":"compressed-tensors","format":"mxfp4-pack-quantized"}}"#,
    );
    let expected_mx: Vec<f32> = (0..64)
        .map(|k| e2m1(codes[k]) * if k < 32 { 1.0 } else { 8.0 })
        .collect();
    assert_eq!(read_all(mx.as_ref(), "l.weight"), expected_mx);
}

/// Layouts that do not fit are named, and their parts are not read as weights.
#[test]
fn microscaled_layouts_that_do_not_fit_are_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    let src = write(
        tmp.path(),
        &[
            // 3 scales for rows of 32: not whole groups.
            ("a.weight_packed", StDtype::U8, vec![1, 16], vec![0; 16]),
            (
                "a.weight_scale",
                StDtype::F8_E4M3,
                vec![1, 3],
                vec![0x38; 3],
            ),
            // gpt-oss blocks that are not 4-D.
            ("b_blocks", StDtype::U8, vec![2, 16], vec![0; 32]),
            ("b_scales", StDtype::U8, vec![2], vec![127; 2]),
            // A zero tensor scale.
            ("c.weight", StDtype::U8, vec![1, 16], vec![0; 16]),
            (
                "c.weight_scale",
                StDtype::F8_E4M3,
                vec![1, 2],
                vec![0x38; 2],
            ),
            (
                "c.weight_scale_2",
                StDtype::F32,
                vec![],
                0f32.to_le_bytes().to_vec(),
            ),
        ],
        r#"{"quantization_config":{"quant_method":"modelopt"}}"#,
    );
    assert!(src.tensors().iter().all(|t| !t.is_weight));
    let q = src.quantization().unwrap();
    assert!(q.contains("unsupported"), "{q}");
    let notes = src.notes().join(" ");
    assert!(notes.contains("not one F8_E4M3 scale per group"), "{notes}");
    assert!(
        notes.contains("is not [experts, rows, groups, bytes]"),
        "{notes}"
    );
    assert!(notes.contains("tensor scale 0"), "{notes}");
}
