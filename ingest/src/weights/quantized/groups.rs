//! Recognising the packed layers of a quantized safetensors checkpoint: which stored tensors form one logical
//! weight, and which decoder reads it (or why none can).
//!
//! Each layout is recognised by its tensor names and dtypes; config.json's declaration only refines the
//! parameters of a group that is present (bits, group size, MLX's mode). A layout that is present but does not
//! fit becomes a group with an `Unsupported` reason, so that its parts are never read as weights.

use super::config::QuantConfig;
use super::decode::{
    self, Arrangement, Awq, Bnb4, Bnb4Parts, Bnb8, Ct, CtParts, Decoder, Fp8, Gptq, Micro,
    MicroParts, MicroScheme, Mlx, Part, Unsupported,
};
use crate::weights::{SafetensorsSource, WeightSource};
use provsearch_formats::dtype::Dtype;
use std::collections::HashMap;

/// One packed layer found in the checkpoint.
pub(super) struct Group {
    /// Logical weight name.
    pub(super) name: String,
    /// Scheme name used when the group cannot be read (`"gptq-4bit"`, `"bnb-nf4"`, ...).
    pub(super) family: String,
    /// Every stored tensor the group consumes.
    pub(super) parts: Vec<usize>,
    pub(super) decoder: std::result::Result<Decoder, Unsupported>,
}

fn family(method: &str, bits: Option<u32>) -> String {
    bits.map_or_else(|| method.to_string(), |b| format!("{method}-{b}bit"))
}

/// Find the packed groups of a checkpoint.
pub(super) fn find_groups(src: &SafetensorsSource, cfg: &QuantConfig) -> Vec<Group> {
    let metas = src.tensors();
    let index: HashMap<&str, usize> = metas
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let find = |name: String| index.get(name.as_str()).copied();
    let method = cfg.method.as_deref();
    let mut groups = Vec::new();
    for (i, meta) in metas.iter().enumerate() {
        let name = meta.name.as_str();
        let dtype = src.dtype(i);
        if let Some(prefix) = name.strip_suffix(".qweight") {
            let (qzeros, scales, g_idx) = (
                find(format!("{prefix}.qzeros")),
                find(format!("{prefix}.scales")),
                find(format!("{prefix}.g_idx")),
            );
            let scale_cols = scales.and_then(|s| metas[s].shape.get(1).copied());
            let cols = meta.shape.get(1).copied();
            let awq = match method {
                Some("awq") => true,
                Some("gptq") => false,
                _ => scale_cols.is_some() && scale_cols != cols,
            };
            let fam = family(
                if awq { "awq" } else { "gptq" },
                cfg.bits.or(awq.then_some(4)),
            );
            let decoder = match (qzeros, scales) {
                (Some(z), Some(s)) if awq => {
                    Awq::new(src, [Part(i), Part(z), Part(s)], cfg).map(Decoder::Awq)
                }
                (Some(z), Some(s)) => {
                    Gptq::new(src, [Part(i), Part(z), Part(s)], g_idx.map(Part), cfg)
                        .map(Decoder::Gptq)
                }
                (None, Some(_)) => Err("no qzeros (symmetric layout without zero points)".into()),
                _ => Err("no scales".into()),
            };
            groups.push(Group {
                name: format!("{prefix}.weight"),
                family: decoder.as_ref().map_or(fam, Decoder::label),
                parts: [Some(i), qzeros, scales, g_idx]
                    .into_iter()
                    .flatten()
                    .collect(),
                decoder,
            });
        } else if let Some(prefix) = name.strip_suffix(".weight_packed") {
            // compressed-tensors pack-quantized: integer codes in int32 words, or E2M1 pairs in bytes (nvfp4-
            // and mxfp4-pack-quantized).
            groups.push(compressed_tensors_group(src, &find, i, prefix, cfg.bits));
        } else if let (Some(Dtype::U8), Some(prefix)) = (dtype, name.strip_suffix("_blocks")) {
            // gpt-oss MXFP4 experts: `{proj}_blocks` beside `{proj}_scales`.
            if let Some(scales) = find(format!("{prefix}_scales")) {
                groups.push(gpt_oss_group(src, i, scales, prefix));
            }
        } else if let (Some(Dtype::U32), Some(prefix), Some(scheme)) = (
            dtype,
            name.strip_suffix(".weight"),
            cfg.format.as_deref().and_then(mlx_micro_scheme),
        ) {
            // MLX's microscaled modes: uint32 code words beside uint8 `scales`, no biases.
            let Some(scales) = find(format!("{prefix}.scales")) else {
                continue;
            };
            let shape = &meta.shape;
            let decoder = match shape.as_slice() {
                &[rows, words] => Micro::new(
                    src,
                    MicroParts {
                        codes: Part(i),
                        scales: Part(scales),
                    },
                    scheme,
                    Arrangement::Rows,
                    [rows, words * 32 / scheme.bits()],
                    1.0,
                )
                .map(Decoder::Micro),
                _ => Err(format!("weight {shape:?} is not 2-D")),
            };
            groups.push(Group {
                name: name.to_string(),
                family: scheme.label().into(),
                parts: vec![i, scales],
                decoder,
            });
        } else if let (Some(Dtype::U32), Some(prefix)) = (dtype, name.strip_suffix(".weight")) {
            // MLX: `weight` uint32 codes beside `scales` and `biases` (embeddings and heads too).
            let Some(scales) = find(format!("{prefix}.scales")) else {
                continue;
            };
            let biases = find(format!("{prefix}.biases"));
            let params = cfg.mlx_params(prefix);
            let decoder = match (cfg.format.as_deref(), biases, params) {
                (Some(mode), _, _) if mode != "affine" => Err(format!("MLX `{mode}` mode")),
                (_, None, _) => Err("no biases (an MLX mode other than affine)".into()),
                (_, _, None) => {
                    Err("no bits/group_size declared in config.json `quantization`".into())
                }
                (_, Some(b), Some((bits, group))) => u64::try_from(group)
                    .map_err(|_| format!("group_size {group}"))
                    .and_then(|g| Mlx::new(src, [Part(i), Part(scales), Part(b)], bits, g))
                    .map(Decoder::Mlx),
            };
            groups.push(Group {
                name: name.to_string(),
                family: family("mlx", params.map(|p| p.0)),
                parts: [Some(i), Some(scales), biases]
                    .into_iter()
                    .flatten()
                    .collect(),
                decoder,
            });
        } else if dtype == Some(Dtype::I8) && name.ends_with(".weight") {
            let prefix = &name[..name.len() - ".weight".len()];
            let Some(scb) = find(format!("{prefix}.SCB")) else {
                // compressed-tensors int-quantized (W8A8, W8A16): int8 codes beside `weight_scale`.
                if find(format!("{prefix}.weight_scale")).is_some() {
                    groups.push(compressed_tensors_group(src, &find, i, prefix, Some(8)));
                }
                continue;
            };
            let format = find(format!("{prefix}.weight_format"));
            groups.push(Group {
                name: name.to_string(),
                family: "bnb-int8".into(),
                parts: [Some(i), Some(scb), format].into_iter().flatten().collect(),
                decoder: Bnb8::new(src, Part(i), Part(scb)).map(Decoder::Bnb8),
            });
        } else if dtype == Some(Dtype::U8) && name.ends_with(".weight") {
            let nf4 = find(format!("{name}.quant_state.bitsandbytes__nf4"));
            let fp4 = find(format!("{name}.quant_state.bitsandbytes__fp4"));
            let Some(state) = nf4.or(fp4) else {
                // NVIDIA ModelOpt NVFP4: packed E2M1 `weight` beside an FP8 `weight_scale`.
                let prefix = &name[..name.len() - ".weight".len()];
                if let Some(scale) = find(format!("{prefix}.weight_scale")) {
                    groups.push(modelopt_group(src, &find, i, scale, prefix));
                }
                continue;
            };
            let (absmax, quant_map) = (
                find(format!("{name}.absmax")),
                find(format!("{name}.quant_map")),
            );
            let nested = (
                find(format!("{name}.nested_absmax")),
                find(format!("{name}.nested_quant_map")),
            );
            let decoder = match (absmax, quant_map, nested) {
                (Some(absmax), Some(quant_map), (na, nm)) => Bnb4::new(
                    src,
                    Bnb4Parts {
                        weight: Part(i),
                        absmax: Part(absmax),
                        quant_map: Part(quant_map),
                        state: Part(state),
                        nested: na.zip(nm).map(|(a, m)| (Part(a), Part(m))),
                    },
                )
                .map(Decoder::Bnb4),
                _ => Err("no absmax or quant_map".into()),
            };
            groups.push(Group {
                name: name.to_string(),
                family: if fp4.is_some() { "bnb-fp4" } else { "bnb-nf4" }.into(),
                parts: [Some(i), Some(state), absmax, quant_map, nested.0, nested.1]
                    .into_iter()
                    .flatten()
                    .collect(),
                decoder,
            });
        } else if matches!(dtype, Some(Dtype::F8E4M3 | Dtype::F8E5M2))
            && !name.ends_with("_scale")
            && !name.ends_with("_scale_inv")
        {
            // (FP8 scales belong to other layouts: NVFP4's `weight_scale`. Fused expert tensors without a
            // `.weight` suffix are weights.)
            let prefix = name.strip_suffix(".weight");
            let aux = |suffix: &str| prefix.and_then(|p| find(format!("{p}.{suffix}")));
            let (scale_inv, scale, input) = (
                aux("weight_scale_inv"),
                aux("weight_scale"),
                aux("input_scale"),
            );
            groups.push(Group {
                name: name.to_string(),
                family: if dtype == Some(Dtype::F8E5M2) {
                    "fp8-e5m2"
                } else {
                    "fp8-e4m3"
                }
                .into(),
                parts: [Some(i), scale_inv, scale, input]
                    .into_iter()
                    .flatten()
                    .collect(),
                decoder: Fp8::new(src, Part(i), scale_inv.map(Part), scale.map(Part), cfg)
                    .map(Decoder::Fp8),
            });
        }
    }
    groups
}

/// A compressed-tensors layer: its codes (tensor `i`: `weight_packed` int32 words, or an int8 `weight`) with the
/// `{prefix}.weight_*` parts beside them; `bits` is the declared code width.
fn compressed_tensors_group(
    src: &SafetensorsSource,
    find: &dyn Fn(String) -> Option<usize>,
    i: usize,
    prefix: &str,
    bits: Option<u32>,
) -> Group {
    let aux = |p: &str| find(format!("{prefix}.{p}"));
    let scale = aux("weight_scale");
    let packed_floats = matches!(src.dtype(i), Some(Dtype::U8 | Dtype::F4));
    let scheme = match scale.and_then(|s| src.dtype(s)) {
        Some(Dtype::F8E4M3) => MicroScheme::Nvfp4,
        _ => MicroScheme::Mxfp4,
    };
    let decoder = match scale {
        // `nvfp4-pack-quantized` and `mxfp4-pack-quantized`: E2M1 codes, two per byte; NVFP4's
        // `weight_global_scale` divides (compressed-tensors' `_dequantize`: `scale / global_scale`).
        Some(s) if packed_floats => aux("weight_global_scale")
            .map_or(Ok(1.0), |g| scalar(src, Part(g)).map(|v| 1.0 / v))
            .and_then(|factor| packed_rows(src, i, scheme, factor, s))
            .map(Decoder::Micro),
        Some(s) => Ct::new(
            src,
            CtParts {
                codes: Part(i),
                shape: aux("weight_shape").map(Part),
                scales: Part(s),
                zeros: aux("weight_zero_point").map(Part),
                g_idx: aux("weight_g_idx").map(Part),
            },
            bits,
        )
        .map(Decoder::Ct),
        None => Err("no weight_scale".into()),
    };
    let others = [
        "weight_shape",
        "weight_scale",
        "weight_zero_point",
        "weight_g_idx",
        "weight_global_scale",
        "input_scale",
        "input_global_scale",
    ]
    .map(aux);
    Group {
        name: format!("{prefix}.weight"),
        family: if packed_floats {
            scheme.label().to_string()
        } else {
            family("compressed-tensors", bits)
        },
        parts: std::iter::once(i)
            .chain(others.into_iter().flatten())
            .collect(),
        decoder,
    }
}

/// The microscaled scheme of an MLX `mode`, if it is one.
fn mlx_micro_scheme(mode: &str) -> Option<MicroScheme> {
    match mode {
        "mxfp4" => Some(MicroScheme::Mxfp4),
        "nvfp4" => Some(MicroScheme::Nvfp4),
        "mxfp8" => Some(MicroScheme::Mxfp8),
        _ => None,
    }
}

/// A one-value float tensor (a tensor-wide scale).
fn scalar(src: &SafetensorsSource, part: Part) -> std::result::Result<f32, Unsupported> {
    decode::read_floats::<1>(src, part).map(|[v]| v)
}

/// A 2-D weight of E2M1 codes packed two per byte (`[out, in/2]` bytes, or `[out, in]` F4 values), rows as
/// stored.
fn packed_rows(
    src: &SafetensorsSource,
    codes: usize,
    scheme: MicroScheme,
    factor: f32,
    scales: usize,
) -> std::result::Result<Micro, Unsupported> {
    let shape = &src.tensors()[codes].shape;
    let &[rows, cols] = shape.as_slice() else {
        return Err(format!("codes {shape:?} are not 2-D"));
    };
    let input = if src.dtype(codes) == Some(Dtype::F4) {
        cols
    } else {
        cols * 2
    };
    Micro::new(
        src,
        MicroParts {
            codes: Part(codes),
            scales: Part(scales),
        },
        scheme,
        Arrangement::Rows,
        [rows, input],
        factor,
    )
}

/// NVIDIA ModelOpt NVFP4 (`quant_algo: NVFP4`): uint8 `weight` `[out, in/2]`, F8_E4M3 `weight_scale`
/// `[out, in/16]` and the F32 `weight_scale_2`, which multiplies.
fn modelopt_group(
    src: &SafetensorsSource,
    find: &dyn Fn(String) -> Option<usize>,
    i: usize,
    scale: usize,
    prefix: &str,
) -> Group {
    let aux = |p: &str| find(format!("{prefix}.{p}"));
    let scale_2 = aux("weight_scale_2");
    let decoder = scale_2
        .map_or(Ok(1.0), |s| scalar(src, Part(s)))
        .and_then(|factor| packed_rows(src, i, MicroScheme::Nvfp4, factor, scale))
        .map(Decoder::Micro);
    Group {
        name: format!("{prefix}.weight"),
        family: "nvfp4".into(),
        parts: [Some(i), Some(scale), scale_2, aux("input_scale")]
            .into_iter()
            .flatten()
            .collect(),
        decoder,
    }
}

/// gpt-oss fused experts in MXFP4: `{prefix}_blocks` uint8 `[E, N, G, 16]` (32 E2M1 codes per block) and
/// `{prefix}_scales` uint8 `[E, N, G]`, read as the `[E, G·32, N]` weight transformers dequantizes them to.
fn gpt_oss_group(src: &SafetensorsSource, blocks: usize, scales: usize, prefix: &str) -> Group {
    let shape = &src.tensors()[blocks].shape;
    let decoder = match shape.as_slice() {
        &[experts, n, groups, bytes] => Micro::new(
            src,
            MicroParts {
                codes: Part(blocks),
                scales: Part(scales),
            },
            MicroScheme::Mxfp4,
            Arrangement::ExpertsTransposed { experts },
            [experts * n, groups * bytes * 2],
            1.0,
        )
        .map(Decoder::Micro),
        _ => Err(format!(
            "`{prefix}_blocks` {shape:?} is not [experts, rows, groups, bytes]"
        )),
    };
    Group {
        name: prefix.to_string(),
        family: "mxfp4".into(),
        parts: vec![blocks, scales],
        decoder,
    }
}
