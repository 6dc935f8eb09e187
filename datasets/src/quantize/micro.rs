//! Microscaled float writers: NVFP4 as compressed-tensors and NVIDIA ModelOpt store it, MXFP4 as
//! compressed-tensors stores it, and gpt-oss's MXFP4 experts (with the conversion of a Llama-style MLP into
//! gpt-oss's fused expert tensors that those checkpoints start from).

use super::{abs_max, f32s, f8_e4m3, f8_e4m3_value, nearest, Encoded};
use crate::checkpoint::{Checkpoint, Tensor};
use safetensors::Dtype;

/// E2M1 magnitudes by code (the sign is bit 3).
const E2M1: [f32; 8] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];

/// The E2M1 code nearest to `x`, saturating at ±6.
fn e2m1(x: f32) -> u8 {
    let m = nearest(&E2M1, x.abs().min(6.0)) as u8;
    if x < 0.0 && m != 0 {
        m | 8
    } else {
        m
    }
}

/// Codes two per byte, the even element in the low nibble.
fn pack(codes: &[u8]) -> Vec<u8> {
    codes.chunks(2).map(|p| p[0] | (p[1] << 4)).collect()
}

/// MXFP4 codes and E8M0 scale bytes of a row (groups of 32): the scale is `amax / 6` rounded up to a power of
/// two (compressed-tensors' `round_to_power_2`), so no value saturates. (The OCP recipe's ⌊log2 amax⌋ − 2 clips
/// the top of the group instead.)
fn mxfp4_row(row: &[f32], codes: &mut Vec<u8>, scales: &mut Vec<u8>) {
    for group in row.chunks(32) {
        let amax = abs_max(group);
        let exponent = if amax > 0.0 {
            ((amax / 6.0).log2().ceil() as i32).clamp(-127, 127)
        } else {
            -127
        };
        scales.push((exponent + 127) as u8);
        let scale = 2f32.powi(exponent);
        codes.extend(group.iter().map(|x| e2m1(x / scale)));
    }
}

/// NVFP4 of one `[out, in]` weight: a tensor scale `amax / (6 · 448)` and E4M3 scales per 16. ModelOpt stores
/// the tensor scale as `weight_scale_2` (it multiplies); compressed-tensors stores its inverse as
/// `weight_global_scale` (it divides).
pub(super) fn nvfp4(t: &Tensor, modelopt: bool) -> Vec<Encoded> {
    let (out, input) = (t.shape[0], t.shape[1]);
    let tensor_scale = (abs_max(&t.data) / (6.0 * 448.0)).max(f32::MIN_POSITIVE);
    let (mut codes, mut scales) = (Vec::with_capacity(out * input), Vec::new());
    for group in t.data.chunks(16) {
        let s8 = f8_e4m3(abs_max(group) / 6.0 / tensor_scale);
        scales.push(s8);
        let scale = f8_e4m3_value(s8) * tensor_scale;
        codes.extend(
            group
                .iter()
                .map(|x| if scale > 0.0 { e2m1(x / scale) } else { 0 }),
        );
    }
    let prefix = t.name.trim_end_matches(".weight");
    let (codes_name, global) = if modelopt {
        (
            t.name.clone(),
            (
                format!("{prefix}.weight_scale_2"),
                Dtype::F32,
                vec![],
                f32s(&[tensor_scale]),
            ),
        )
    } else {
        (
            format!("{prefix}.weight_packed"),
            (
                format!("{prefix}.weight_global_scale"),
                Dtype::F32,
                vec![1],
                f32s(&[1.0 / tensor_scale]),
            ),
        )
    };
    vec![
        (codes_name, Dtype::U8, vec![out, input / 2], pack(&codes)),
        (
            format!("{prefix}.weight_scale"),
            Dtype::F8_E4M3,
            vec![out, input / 16],
            scales,
        ),
        global,
    ]
}

/// compressed-tensors `mxfp4-pack-quantized`: `weight_packed` and uint8 E8M0 `weight_scale` per 32.
pub(super) fn mxfp4_packed(t: &Tensor) -> Vec<Encoded> {
    let (out, input) = (t.shape[0], t.shape[1]);
    let (mut codes, mut scales) = (Vec::with_capacity(out * input), Vec::new());
    for row in t.data.chunks(input) {
        mxfp4_row(row, &mut codes, &mut scales);
    }
    let prefix = t.name.trim_end_matches(".weight");
    vec![
        (
            format!("{prefix}.weight_packed"),
            Dtype::U8,
            vec![out, input / 2],
            pack(&codes),
        ),
        (
            format!("{prefix}.weight_scale"),
            Dtype::U8,
            vec![out, input / 32],
            scales,
        ),
    ]
}

/// Whether a tensor is one of gpt-oss's fused expert weights (`mlp.experts.gate_up_proj`, `down_proj`).
pub(super) fn is_fused_experts(t: &Tensor) -> bool {
    t.shape.len() == 3
        && (t.name.ends_with("mlp.experts.gate_up_proj")
            || t.name.ends_with("mlp.experts.down_proj"))
}

/// gpt-oss MXFP4: the `[E, in, out]` weight stored transposed as `[E, out, in]` rows, quantized in groups of
/// 32 along `in`: `{name}_blocks` `[E, out, in/32, 16]` and `{name}_scales` `[E, out, in/32]`.
pub(super) fn gpt_oss(t: &Tensor) -> Vec<Encoded> {
    let (experts, input, out) = (t.shape[0], t.shape[1], t.shape[2]);
    let (mut codes, mut scales) = (Vec::with_capacity(t.data.len()), Vec::new());
    let mut row = vec![0f32; input];
    for e in 0..experts {
        let w = &t.data[e * input * out..(e + 1) * input * out];
        for n in 0..out {
            for (k, v) in row.iter_mut().enumerate() {
                *v = w[k * out + n];
            }
            mxfp4_row(&row, &mut codes, &mut scales);
        }
    }
    vec![
        (
            format!("{}_blocks", t.name),
            Dtype::U8,
            vec![experts, out, input / 32, 16],
            pack(&codes),
        ),
        (
            format!("{}_scales", t.name),
            Dtype::U8,
            vec![experts, out, input / 32],
            scales,
        ),
    ]
}

/// A Llama-style checkpoint with each layer's MLP rewritten as gpt-oss stores it: `experts` experts, each
/// taking an equal slice of the intermediate units, in `mlp.experts.gate_up_proj` `[E, hidden, 2·I/E]` (gate
/// and up columns interleaved) and `mlp.experts.down_proj` `[E, I/E, hidden]`. The float checkpoint a gpt-oss
/// MXFP4 release is compared with.
pub fn fuse_experts(ckpt: &Checkpoint, experts: usize) -> Checkpoint {
    let mut fused = ckpt.clone();
    fused.tensors.retain(|t| {
        ![
            "mlp.gate_proj.weight",
            "mlp.up_proj.weight",
            "mlp.down_proj.weight",
        ]
        .iter()
        .any(|s| t.name.ends_with(s))
    });
    let find = |name: &str| ckpt.tensors.iter().find(|t| t.name == name);
    for gate in ckpt
        .tensors
        .iter()
        .filter(|t| t.name.ends_with("mlp.gate_proj.weight"))
    {
        let prefix = gate.name.trim_end_matches("gate_proj.weight");
        let (Some(up), Some(down)) = (
            find(&format!("{prefix}up_proj.weight")),
            find(&format!("{prefix}down_proj.weight")),
        ) else {
            continue;
        };
        let (inter, hidden) = (gate.shape[0], gate.shape[1]);
        let per = inter / experts;
        let mut gate_up = Vec::with_capacity(2 * inter * hidden);
        let mut down_t = Vec::with_capacity(inter * hidden);
        for e in 0..experts {
            for h in 0..hidden {
                for j in 0..per {
                    let unit = e * per + j;
                    gate_up.push(gate.data[unit * hidden + h]);
                    gate_up.push(up.data[unit * hidden + h]);
                }
            }
            for j in 0..per {
                let unit = e * per + j;
                down_t.extend((0..hidden).map(|h| down.data[h * inter + unit]));
            }
        }
        fused.tensors.push(Tensor::new(
            format!("{prefix}experts.gate_up_proj"),
            vec![experts, hidden, 2 * per],
            gate_up,
        ));
        fused.tensors.push(Tensor::new(
            format!("{prefix}experts.down_proj"),
            vec![experts, per, hidden],
            down_t,
        ));
    }
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2m1_rounds_to_the_nearest_value() {
        assert_eq!(e2m1(2.6), 5, "3.0 is code 5");
        assert_eq!(e2m1(-0.6), 9, "-0.5");
        assert_eq!(e2m1(100.0), 7, "saturates at 6");
        assert_eq!(e2m1(-0.1), 0, "rounds to +0");
    }

    #[test]
    fn mxfp4_scales_round_up_to_a_power_of_two() {
        let row: Vec<f32> = (0..32).map(|i| i as f32 * 0.25).collect(); // max 7.75
        let (mut codes, mut scales) = (Vec::new(), Vec::new());
        mxfp4_row(&row, &mut codes, &mut scales);
        assert_eq!(scales, [128], "7.75 / 6 rounds up to 2^1");
        assert_eq!(codes[31], 6, "7.75 / 2 is nearest 4.0");
        assert_eq!(codes[12], 3, "3.0 / 2 = 1.5 is exact");
    }
}
