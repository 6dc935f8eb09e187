//! GGUF reader tests: a real SmolLM2 Q4_1 file, fixtures written by llama.cpp's gguf-py, round trips through the
//! crate's own writer for every quantizer, random access, and bad input.

use provsearch_formats::gguf::writer::{llama_permute, quantize, GgufWriter};
use provsearch_formats::gguf::{dequantize, GgmlType, GgufFile, GgufTensor, GgufValue};
use provsearch_formats::tokenizer::{Convention, TokenizerModelKind};
use provsearch_formats::Error;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------------------------
// Helpers

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gguf")
}

/// The real test models: `$PROVSEARCH_TEST_MODELS` or `<repo>/.cache/test-models`.
fn test_models() -> PathBuf {
    std::env::var_os("PROVSEARCH_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/test-models"))
}

fn smollm2() -> GgufFile {
    let path = test_models().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-test-models.sh (or set PROVSEARCH_TEST_MODELS)",
        path.display()
    );
    GgufFile::open(&path).expect("open SmolLM2")
}

fn read_f32_file(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Deterministic normal-ish weights (xorshift + Box–Muller).
fn gaussian(n: usize, seed: u64, std: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut uniform = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32 * std
        })
        .collect()
}

fn read_all(file: &GgufFile, name: &str) -> Vec<f32> {
    let t = file
        .tensor(name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    let mut out = vec![0f32; t.numel() as usize];
    file.read_f32(t, 0, &mut out).unwrap();
    out
}

fn rms(v: &[f32]) -> f64 {
    (v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / v.len() as f64).sqrt()
}

/// RMS of the difference, relative to the RMS of `want`.
fn rel_rms_error(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let err: Vec<f32> = got.iter().zip(want).map(|(a, b)| a - b).collect();
    rms(&err) / rms(want)
}

fn write_temp(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

// ---------------------------------------------------------------------------------------------------------------
// The real SmolLM2-135M-Instruct Q4_1 file

#[test]
fn smollm2_header_config_and_vocabulary() {
    let f = smollm2();
    assert_eq!(f.header().version, 3);
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.tensors().len(), 272);
    let c = f.config();
    assert_eq!(c.model_type, "llama");
    assert_eq!(c.architectures, vec!["LlamaForCausalLM".to_string()]);
    assert_eq!(
        (c.num_layers, c.hidden_size, c.intermediate_size),
        (30, 576, 1536)
    );
    assert_eq!((c.num_attention_heads, c.num_key_value_heads), (9, Some(3)));
    assert_eq!((c.vocab_size, c.max_position_embeddings), (49152, 8192));
    assert_eq!(c.rope_theta, Some(100000.0));
    assert_eq!(
        (
            c.norm_type.as_str(),
            c.attention_style.as_str(),
            c.pos_encoding.as_str()
        ),
        ("RMSNorm", "GQA", "RoPE")
    );
    assert_eq!(c.tie_word_embeddings, Some(true));
    assert_eq!(c.attention_bias, Some(false));
    assert_eq!((c.bos_token_id, c.eos_token_id), (Some(1), Some(2)));
    assert_eq!(c.hidden_act.as_deref(), Some("silu"));

    let v = f.vocabulary().unwrap().expect("vocabulary");
    assert_eq!(v.tokens.len(), 49152);
    assert_eq!(
        (v.kind, v.convention),
        (TokenizerModelKind::Bpe, Convention::ByteLevel)
    );
    assert_eq!(v.merges.len(), 48900);
    assert_eq!(&v.merges[0], "Ġ t");
    assert_eq!(v.tokens.get(1), Some(("<|im_start|>", 1)));
    assert!(v
        .tokens
        .iter()
        .enumerate()
        .all(|(i, (_, id))| *id as usize == i));
    assert!(v
        .added_tokens
        .contains(&("<|im_end|>".to_string(), 2, true)));
    assert_eq!(
        (v.special.bos, v.special.eos, v.special.unk, v.special.pad),
        (Some(1), Some(2), Some(0), Some(2))
    );
    assert!(!v.lowercase);
}

#[test]
fn smollm2_names_and_rotary_heads() {
    let f = smollm2();
    let q = f
        .tensor("model.layers.0.self_attn.q_proj.weight")
        .expect("q_proj by HF name");
    assert_eq!(
        (q.name.as_str(), q.shape.as_slice(), q.unpermute_heads),
        ("blk.0.attn_q.weight", &[576u64, 576][..], Some(9))
    );
    let k = f.tensor("blk.29.attn_k.weight").unwrap();
    assert_eq!(
        (k.hf_name.as_deref(), k.shape.as_slice(), k.unpermute_heads),
        (
            Some("model.layers.29.self_attn.k_proj.weight"),
            &[192u64, 576][..],
            Some(3)
        )
    );
    let e = f.tensor("token_embd.weight").unwrap();
    assert_eq!(
        (e.hf_name.as_deref(), e.ggml_type, e.shape.as_slice()),
        (
            Some("model.embed_tokens.weight"),
            GgmlType::Q8_0,
            &[49152u64, 576][..]
        )
    );
    assert_eq!(
        f.tensor("blk.3.ffn_norm.weight")
            .unwrap()
            .hf_name
            .as_deref(),
        Some("model.layers.3.post_attention_layernorm.weight")
    );
    assert_eq!(
        f.tensor("output_norm.weight").unwrap().hf_name.as_deref(),
        Some("model.norm.weight")
    );
    assert!(
        f.tensors().iter().all(|t| t.hf_name.is_some()),
        "every SmolLM2 tensor has an HF name"
    );
    assert!(
        f.tensors()
            .iter()
            .filter(|t| t.unpermute_heads.is_some())
            .count()
            == 60
    );
}

#[test]
fn smollm2_token_embd_dequantizes_to_plausible_values() {
    let f = smollm2();
    let t = f.tensor("token_embd.weight").unwrap();
    // Stream the whole tensor in chunks that do not line up with the 32-element blocks.
    let (mut sum, mut sq, mut start) = (0f64, 0f64, 0u64);
    let mut buf = vec![0f32; 100_003];
    while start < t.numel() {
        let n = buf.len().min((t.numel() - start) as usize);
        f.read_f32(t, start, &mut buf[..n]).unwrap();
        for &x in &buf[..n] {
            assert!(x.is_finite());
            sum += f64::from(x);
            sq += f64::from(x) * f64::from(x);
        }
        start += n as u64;
    }
    let rms = (sq / t.numel() as f64).sqrt();
    // gguf-py (llama.cpp's reference dequantizer) gives RMS 0.135579 and sum -15353.04 for this tensor.
    assert!((rms - 0.135_579).abs() < 1e-5, "rms {rms}");
    assert!((sum - -15353.04).abs() < 0.5, "sum {sum}");
    let mut row0 = [0f32; 4];
    f.read_f32(t, 0, &mut row0).unwrap();
    for (a, b) in row0
        .iter()
        .zip([-0.10654449f32, 0.03297806, 0.0481987, -0.02283096])
    {
        assert!((a - b).abs() < 1e-6, "{row0:?}");
    }
    let mut one = [0f32];
    f.read_f32(t, 1000 * 576 + 100, &mut one).unwrap();
    assert!((one[0] - 0.06422424).abs() < 1e-6);
}

#[test]
fn smollm2_q4_1_block_is_d_times_q_plus_m() {
    let f = smollm2();
    let t = f.tensor("blk.0.ffn_down.weight").unwrap();
    assert_eq!(
        (t.ggml_type, t.shape.as_slice()),
        (GgmlType::Q4_1, &[576u64, 1536][..])
    );
    let raw = f.raw_bytes(t).unwrap();
    // Block 1 of row 5: elements 5·1536 + 32 .. + 64.
    let block = &raw[(5 * 1536 / 32 + 1) * 20..][..20];
    let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
    let m = half::f16::from_le_bytes([block[2], block[3]]).to_f32();
    let mut got = [0f32; 32];
    f.read_f32(t, 5 * 1536 + 32, &mut got).unwrap();
    for (j, g) in got.iter().enumerate() {
        let byte = block[4 + j % 16];
        let q = if j < 16 { byte & 0x0f } else { byte >> 4 };
        assert_eq!(*g, d * q as f32 + m, "element {j}");
    }
    // Values gguf-py gives for the same tensor.
    let mut row0 = [0f32; 3];
    f.read_f32(t, 0, &mut row0).unwrap();
    assert_eq!(row0, [-0.33081055, 0.34606934, 0.07531738]);
    let mut one = [0f32];
    f.read_f32(t, 5 * 1536 + 7, &mut one).unwrap();
    assert_eq!(one[0], -0.37695312);
}

#[test]
fn smollm2_attention_rows_come_back_in_hugging_face_order() {
    let f = smollm2();
    let q = f.tensor("blk.0.attn_q.weight").unwrap();
    let row = |t, r: u64, n: usize| {
        let mut v = vec![0f32; n];
        f.read_f32(t, r * 576, &mut v).unwrap();
        v
    };
    // gguf-py's stored rows: HF row 32 (head 0, second half, pair 0) is stored row 1; HF row 1 is stored row 2.
    assert_eq!(row(q, 32, 3), [-0.11730957, -0.11730957, -0.19281006]);
    assert_eq!(row(q, 1, 3), [-0.15917969, 0.39794922, -0.019897461]);
    // Stored row 67 (head 1, pair 1, second half) is HF row 64 + 32 + 1.
    let mut one = [0f32];
    f.read_f32(q, 97 * 576 + 10, &mut one).unwrap();
    assert_eq!(one[0], -0.0048828125);
    let k = f.tensor("blk.0.attn_k.weight").unwrap();
    assert_eq!(row(k, 32, 2), [0.056640625, 0.056640625]);
}

// ---------------------------------------------------------------------------------------------------------------
// Cross-check against gguf-py (fixtures made by tests/data/gguf/make_reference.py)

#[test]
fn dequantizers_match_gguf_py_bit_for_bit() {
    let types = [
        "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
        "Q6_K", "IQ4_NL", "IQ4_XS", "TQ2_0", "MXFP4",
    ];
    for name in types {
        let ty = GgmlType::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .unwrap();
        let blocks = std::fs::read(data_dir().join(format!("{name}.q"))).unwrap();
        let want = read_f32_file(&data_dir().join(format!("{name}.f32")));
        let mut got = vec![0f32; want.len()];
        dequantize(ty, &blocks, &mut got).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{name} element {i}: {g} vs gguf-py {w}"
            );
        }
    }
}

#[test]
fn reads_a_file_written_by_gguf_py() {
    let f = GgufFile::open(&data_dir().join("gguf_py_small.gguf")).unwrap();
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.header().alignment, 32);
    for name in [
        "token_embd.weight",
        "blk.0.attn_q.weight",
        "blk.0.attn_k.weight",
        "blk.0.ffn_up.weight",
    ] {
        let want = read_f32_file(&data_dir().join(format!("gguf_py_small.{name}.f32")));
        assert_eq!(read_all(&f, name), want, "{name}");
    }
    assert_eq!(
        f.tensor("blk.0.attn_k.weight").unwrap().unpermute_heads,
        Some(2)
    );
    let c = f.config();
    assert_eq!(
        (
            c.hidden_size,
            c.num_layers,
            c.num_attention_heads,
            c.num_key_value_heads
        ),
        (32, 1, 4, Some(2))
    );
    assert_eq!(
        (c.intermediate_size, c.max_position_embeddings, c.vocab_size),
        (64, 128, 8)
    );
    let v = f.vocabulary().unwrap().unwrap();
    assert_eq!(v.merges, ["a b", "Ġ a", "Ġa b"]);
    assert_eq!(
        v.added_tokens,
        [("<s>".to_string(), 0, true), ("</s>".to_string(), 1, true)]
    );
    assert_eq!((v.special.bos, v.special.eos), (Some(0), Some(1)));
}

// ---------------------------------------------------------------------------------------------------------------
// Round trips through the writer

const HIDDEN: usize = 256;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = HIDDEN / HEADS;
const FFN: usize = 512;
const VOCAB: usize = 64;

struct Model {
    embed: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    down: Vec<f32>,
    norm: Vec<f32>,
}

fn model() -> Model {
    Model {
        embed: gaussian(VOCAB * HIDDEN, 1, 0.05),
        q: gaussian(HIDDEN * HIDDEN, 2, 0.05),
        k: gaussian(KV_HEADS * HEAD_DIM * HIDDEN, 3, 0.05),
        down: gaussian(HIDDEN * FFN, 4, 0.02),
        norm: gaussian(HIDDEN, 5, 0.1).iter().map(|x| 1.0 + x).collect(),
    }
}

/// A one-layer llama file with every matrix stored as `ty`, Q and K permuted as llama.cpp's converter does.
fn llama_file(ty: GgmlType, m: &Model) -> Vec<u8> {
    llama_writer(ty, m).to_bytes()
}

fn llama_writer(ty: GgmlType, m: &Model) -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "llama")
        .add_u32("llama.block_count", 1)
        .add_u32("llama.embedding_length", HIDDEN as u32)
        .add_u32("llama.feed_forward_length", FFN as u32)
        .add_u32("llama.attention.head_count", HEADS as u32)
        .add_u32("llama.attention.head_count_kv", KV_HEADS as u32)
        .add_u32("llama.context_length", 2048)
        .add_f32("llama.rope.freq_base", 10000.0)
        .add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    let (h, kv) = (HIDDEN as u64, (KV_HEADS * HEAD_DIM) as u64);
    w.add_tensor("token_embd.weight", ty, &[VOCAB as u64, h], &m.embed)
        .unwrap();
    w.add_tensor(
        "blk.0.attn_q.weight",
        ty,
        &[h, h],
        &llama_permute(&m.q, HIDDEN, HIDDEN, HEADS),
    )
    .unwrap();
    w.add_tensor(
        "blk.0.attn_k.weight",
        ty,
        &[kv, h],
        &llama_permute(&m.k, kv as usize, HIDDEN, KV_HEADS),
    )
    .unwrap();
    w.add_tensor("blk.0.ffn_down.weight", ty, &[h, FFN as u64], &m.down)
        .unwrap();
    w.add_tensor("blk.0.attn_norm.weight", GgmlType::F32, &[h], &m.norm)
        .unwrap();
    w
}

/// Relative RMS error bound of each writer quantizer on Gaussian weights (measured values are about 2/3 of
/// these; the bounds are what each type's step size allows, not llama.cpp's better searches).
fn bound(ty: GgmlType) -> f64 {
    match ty {
        GgmlType::F32 => 0.0,
        GgmlType::F16 => 3e-4,
        GgmlType::BF16 => 2.5e-3,
        GgmlType::Q8_0 | GgmlType::Q8_1 => 0.008,
        GgmlType::Q8K => 0.011,
        GgmlType::Q6K => 0.028,
        GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q5K => 0.065,
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q4K => 0.13,
        GgmlType::Q3K => 0.23,
        GgmlType::Q2K => 0.5,
        _ => unreachable!(),
    }
}

const WRITER_TYPES: [GgmlType; 15] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Q8K,
];

#[test]
fn round_trip_every_writer_type() {
    let m = model();
    for ty in WRITER_TYPES {
        let (_dir, path) = write_temp(&llama_file(ty, &m));
        let f = GgufFile::open(&path).unwrap_or_else(|e| panic!("{ty}: {e}"));
        for (name, want) in [
            ("model.embed_tokens.weight", &m.embed),
            ("model.layers.0.self_attn.q_proj.weight", &m.q),
            ("model.layers.0.self_attn.k_proj.weight", &m.k),
            ("model.layers.0.mlp.down_proj.weight", &m.down),
        ] {
            let got = read_all(&f, name);
            let err = rel_rms_error(&got, want);
            assert!(
                err <= bound(ty),
                "{ty} {name}: relative RMS error {err:.5} > {}",
                bound(ty)
            );
            if ty == GgmlType::F32 {
                assert_eq!(
                    &got, want,
                    "{name}: F32 must come back exactly, Q/K unpermuted"
                );
            }
        }
        assert_eq!(
            read_all(&f, "model.layers.0.input_layernorm.weight"),
            m.norm
        );
        assert_eq!(
            f.tensor("blk.0.attn_q.weight").unwrap().unpermute_heads,
            Some(HEADS as u32)
        );
        assert_eq!(
            f.tensor("blk.0.attn_k.weight").unwrap().unpermute_heads,
            Some(KV_HEADS as u32)
        );
    }
}

#[test]
fn quantized_q_and_k_unpermute_row_for_row() {
    // For a quantized type, HF row r must be exactly the dequantized stored row that the converter put it in.
    let m = model();
    let (_dir, path) = write_temp(&llama_file(GgmlType::Q4K, &m));
    let f = GgufFile::open(&path).unwrap();
    let t = f.tensor("blk.0.attn_k.weight").unwrap();
    let mut stored = vec![0f32; t.numel() as usize];
    dequantize(t.ggml_type, f.raw_bytes(t).unwrap(), &mut stored).unwrap();
    let permuted_rows = llama_permute(
        &(0..KV_HEADS * HEAD_DIM)
            .map(|r| r as f32)
            .collect::<Vec<_>>(),
        KV_HEADS * HEAD_DIM,
        1,
        KV_HEADS,
    );
    let got = read_all(&f, "blk.0.attn_k.weight");
    for (stored_row, &hf_row) in permuted_rows.iter().enumerate() {
        let hf_row = hf_row as usize;
        assert_eq!(
            got[hf_row * HIDDEN..][..HIDDEN],
            stored[stored_row * HIDDEN..][..HIDDEN],
            "HF row {hf_row}"
        );
    }
}

#[test]
fn random_access_matches_a_full_read() {
    let m = model();
    for ty in [GgmlType::Q4K, GgmlType::Q5_1, GgmlType::F16, GgmlType::Q6K] {
        let (_dir, path) = write_temp(&llama_file(ty, &m));
        let f = GgufFile::open(&path).unwrap();
        for name in ["blk.0.attn_q.weight", "blk.0.ffn_down.weight"] {
            let t = f.tensor(name).unwrap();
            let full = read_all(&f, name);
            // Through the map and with pread.
            for pread in [false, true] {
                let read = |start: u64, out: &mut [f32]| match pread {
                    false => f.read_f32(t, start, out),
                    true => f.pread_f32(t, start, out),
                };
                // Single elements at scattered positions.
                let n = t.numel();
                for i in 0..500u64 {
                    let pos = (i * 7919 + i * i * 31) % n;
                    let mut one = [0f32];
                    read(pos, &mut one).unwrap();
                    assert_eq!(one[0], full[pos as usize], "{ty} {name} element {pos}");
                }
                // Odd-sized chunks that straddle blocks and rows.
                let mut start = 0u64;
                let mut chunk = vec![0f32; 1001];
                while start < n {
                    let k = chunk.len().min((n - start) as usize);
                    read(start, &mut chunk[..k]).unwrap();
                    assert_eq!(
                        chunk[..k],
                        full[start as usize..start as usize + k],
                        "{ty} {name} chunk at {start}"
                    );
                    start += k as u64;
                }
                // Out of range.
                let mut two = [0f32; 2];
                assert!(matches!(read(n - 1, &mut two), Err(Error::Tensor { .. })));
            }
        }
    }
}

/// A read longer than one pread buffer ([`PREAD_BYTES`]) is read in pieces of whole blocks, from any start.
#[test]
fn long_preads_come_in_pieces_with_the_same_values() {
    use provsearch_formats::gguf::PREAD_BYTES;
    let (rows, cols) = (192usize, 4096usize);
    let values = gaussian(rows * cols, 5, 0.02);
    for ty in [GgmlType::Q8_0, GgmlType::Q4K, GgmlType::F32] {
        let mut w = GgufWriter::new();
        w.add_string("general.architecture", "llama");
        w.add_tensor(
            "blk.0.ffn_up.weight",
            ty,
            &[rows as u64, cols as u64],
            &values,
        )
        .unwrap();
        let (_dir, path) = write_temp(&w.to_bytes());
        let f = GgufFile::open(&path).unwrap();
        let t = &f.tensors()[0];
        assert!(t.len as usize > PREAD_BYTES, "{ty}: {} bytes", t.len);
        let full = read_all(&f, &t.name);
        for start in [0usize, 1, 31, 257, 5000] {
            let mut got = vec![0f32; rows * cols - start - 3];
            f.pread_f32(t, start as u64, &mut got).unwrap();
            assert_eq!(got, full[start..start + got.len()], "{ty} from {start}");
        }
    }
}

#[test]
fn writer_quantizers_reject_partial_blocks() {
    assert!(quantize(GgmlType::Q4K, &[0.0; 255]).is_err());
    assert!(quantize(GgmlType::IQ2_XXS, &[0.0; 256]).is_err());
    assert!(GgufWriter::new()
        .add_tensor("x", GgmlType::Q8_0, &[2, 16], &[0.0; 32])
        .is_err());
    assert_eq!(quantize(GgmlType::Q8_0, &[0.0; 64]).unwrap().len(), 68);
}

// ---------------------------------------------------------------------------------------------------------------
// Metadata: configs and vocabularies of other kinds

#[test]
fn sentencepiece_and_wordpiece_vocabularies() {
    let tokens = ["<unk>", "<s>", "</s>", "▁the", "▁a", "b"];
    let build = |model: &str, scores: Option<Vec<f32>>, tokens: &[&str], types: &[i32]| {
        let mut w = GgufWriter::new();
        w.add_string("general.architecture", "llama")
            .add_string("tokenizer.ggml.model", model);
        w.add_strings("tokenizer.ggml.tokens", tokens);
        w.add_metadata(
            "tokenizer.ggml.token_type",
            GgufValue::Array(types.iter().map(|&t| GgufValue::I32(t)).collect()),
        );
        if let Some(s) = scores {
            w.add_metadata(
                "tokenizer.ggml.scores",
                GgufValue::Array(s.into_iter().map(GgufValue::F32).collect()),
            );
        }
        w.add_u32("tokenizer.ggml.unknown_token_id", 0)
            .add_u32("tokenizer.ggml.bos_token_id", 1);
        let (_dir, path) = write_temp(&w.to_bytes());
        GgufFile::open(&path)
            .unwrap()
            .vocabulary()
            .unwrap()
            .unwrap()
    };
    let types = [2, 3, 3, 1, 1, 1];
    // Llama 2 style: whole-number scores (minus the merge rank) → SentencePiece BPE.
    let v = build(
        "llama",
        Some(vec![0.0, 0.0, 0.0, -1.0, -2.0, -3.0]),
        &tokens,
        &types,
    );
    assert_eq!(
        (v.kind, v.convention),
        (TokenizerModelKind::Bpe, Convention::Metaspace)
    );
    assert_eq!(
        (v.special.unk, v.special.bos, v.special.eos),
        (Some(0), Some(1), None)
    );
    // Log-probability scores → Unigram.
    let v = build(
        "llama",
        Some(vec![0.0, 0.0, 0.0, -3.25, -4.5, -9.75]),
        &tokens,
        &types,
    );
    assert_eq!(v.kind, TokenizerModelKind::Unigram);
    // BERT: WordPiece; lower-case vocabulary → lowercase.
    let bert = ["[PAD]", "[UNK]", "[CLS]", "the", "##s"];
    let v = build("bert", None, &bert, &[3, 2, 3, 1, 1]);
    assert_eq!(
        (v.kind, v.convention, v.lowercase),
        (TokenizerModelKind::WordPiece, Convention::WordPiece, true)
    );
    let v = build("bert", None, &["[PAD]", "The"], &[3, 1]);
    assert!(!v.lowercase);
    // No token list: no vocabulary.
    let (_dir, path) = write_temp(&GgufWriter::new().to_bytes());
    assert!(GgufFile::open(&path)
        .unwrap()
        .vocabulary()
        .unwrap()
        .is_none());
}

#[test]
fn config_of_a_non_llama_architecture() {
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "qwen2")
        .add_u32("qwen2.embedding_length", 64)
        .add_u32("qwen2.attention.head_count", 4)
        .add_f32("qwen2.rope.freq_base", 1_000_000.0);
    w.add_tensor(
        "blk.0.attn_q.weight",
        GgmlType::F32,
        &[64, 64],
        &gaussian(64 * 64, 9, 0.1),
    )
    .unwrap();
    w.add_tensor(
        "blk.0.attn_q.bias",
        GgmlType::F32,
        &[64],
        &gaussian(64, 10, 0.1),
    )
    .unwrap();
    let (_dir, path) = write_temp(&w.to_bytes());
    let f = GgufFile::open(&path).unwrap();
    let c = f.config();
    assert_eq!(
        (
            c.model_type.as_str(),
            c.num_key_value_heads,
            c.attention_style.as_str()
        ),
        ("qwen2", Some(4), "MHA")
    );
    assert_eq!(
        (c.attention_bias, c.tie_word_embeddings, c.rope_theta_is_int),
        (Some(true), None, true)
    );
    // Qwen2 uses NeoX rotary: nothing to unpermute; names still map.
    let q = f.tensor("blk.0.attn_q.bias").unwrap();
    assert_eq!(
        (q.unpermute_heads, q.hf_name.as_deref()),
        (None, Some("model.layers.0.self_attn.q_proj.bias"))
    );
}

#[test]
fn llama_biases_are_unpermuted_too() {
    let bias = gaussian(HIDDEN, 11, 1.0);
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "llama")
        .add_u32("llama.attention.head_count", HEADS as u32);
    w.add_tensor(
        "blk.0.attn_q.bias",
        GgmlType::F32,
        &[HIDDEN as u64],
        &llama_permute(&bias, HIDDEN, 1, HEADS),
    )
    .unwrap();
    let (_dir, path) = write_temp(&w.to_bytes());
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(read_all(&f, "blk.0.attn_q.bias"), bias);
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input: every case is an error naming the file, never a panic or a giant allocation

fn expect_err(bytes: &[u8], what: &str) -> Error {
    let path = Path::new("bad.gguf");
    let err = GgufFile::parse(path, bytes).expect_err(what);
    assert_eq!(err.path(), path, "{what}: {err}");
    assert!(err.to_string().starts_with("bad.gguf: "), "{what}: {err}");
    err
}

/// Header start: magic, version, tensor count, metadata count.
fn head(version: u32, tensors: u64, kvs: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&tensors.to_le_bytes());
    b.extend_from_slice(&kvs.to_le_bytes());
    b
}

fn string(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// One tensor info (no metadata), then padding and `data_len` bytes of data.
fn one_tensor(dims: &[u64], type_id: u32, offset: u64, data_len: usize) -> Vec<u8> {
    let mut b = head(3, 1, 0);
    string(&mut b, "t");
    b.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    for d in dims {
        b.extend_from_slice(&d.to_le_bytes());
    }
    b.extend_from_slice(&type_id.to_le_bytes());
    b.extend_from_slice(&offset.to_le_bytes());
    b.resize(b.len().div_ceil(32) * 32 + data_len, 0);
    b
}

#[test]
fn a_valid_minimal_file_parses() {
    let h = GgufFile::parse(Path::new("ok.gguf"), &one_tensor(&[32, 2], 8, 0, 68)).unwrap();
    assert_eq!(
        (h.tensors[0].len, h.tensors[0].ggml_type, h.data_offset),
        (68, GgmlType::Q8_0, 96)
    );
}

#[test]
fn truncated_files_are_errors() {
    let m = model();
    let full = llama_file(GgmlType::Q4K, &m);
    let header_len = GgufFile::parse(Path::new("x"), &full).unwrap().data_offset as usize;
    // Every cut inside the header, and a few inside the data.
    for cut in (0..header_len).chain([header_len + 1, full.len() / 2, full.len() - 1]) {
        let err = expect_err(&full[..cut], &format!("cut at {cut}"));
        assert!(matches!(err, Error::Corrupt { .. }), "cut at {cut}: {err}");
    }
    let (_dir, path) = write_temp(&full[..10]);
    assert!(matches!(GgufFile::open(&path), Err(Error::Corrupt { .. })));
}

#[test]
fn bad_magic_and_versions() {
    let mut b = one_tensor(&[32], 0, 0, 128);
    b[..4].copy_from_slice(b"GGML");
    assert!(expect_err(&b, "magic").to_string().contains("magic"));
    let mut b = one_tensor(&[32], 0, 0, 128);
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    assert!(matches!(expect_err(&b, "v1"), Error::Unsupported { .. }));
    b[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert!(expect_err(&b, "big-endian")
        .to_string()
        .contains("big-endian"));
}

#[test]
fn unknown_quant_type_names_the_type_and_tensor() {
    let err = expect_err(&one_tensor(&[32], 99, 0, 128), "type 99");
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("99") && msg.contains("`t`"), "{msg}");
}

#[test]
fn known_type_without_a_dequantizer_is_unsupported_at_read() {
    let mut b = one_tensor(
        &[256],
        GgmlType::IQ2_XXS.id(),
        0,
        GgmlType::IQ2_XXS.type_size(),
    );
    b.resize(b.len().div_ceil(32) * 32, 0);
    let (_dir, path) = write_temp(&b);
    let f = GgufFile::open(&path).unwrap();
    let mut out = [0f32; 4];
    let err = f.read_f32(&f.tensors()[0], 0, &mut out).unwrap_err();
    assert!(
        matches!(err, Error::Unsupported { .. }) && err.to_string().contains("IQ2_XXS (16)"),
        "{err}"
    );
}

#[test]
fn tensor_data_beyond_the_file() {
    let err = expect_err(&one_tensor(&[32, 4], 0, 0, 100), "short data");
    assert!(err.to_string().contains("beyond the end"), "{err}");
    expect_err(&one_tensor(&[32], 0, 1 << 40, 128), "far offset");
    expect_err(&one_tensor(&[32], 0, u64::MAX - 31, 128), "offset overflow");
}

#[test]
fn absurd_shapes() {
    expect_err(
        &one_tensor(&[1 << 40, 1 << 40], 0, 0, 0),
        "dims whose product overflows",
    );
    expect_err(
        &one_tensor(&[1 << 32, 1 << 20], 0, 0, 0),
        "dims whose byte size is beyond the file",
    );
    expect_err(&one_tensor(&[2, 2, 2, 2, 2], 0, 0, 128), "five dimensions");
    expect_err(&one_tensor(&[33], 8, 0, 128), "row not a whole Q8_0 block");
    expect_err(&one_tensor(&[32], 0, 16, 256), "misaligned offset");
}

#[test]
fn huge_counts_and_lengths_are_rejected_before_allocating() {
    // Tensor and metadata counts far beyond what the file could hold.
    let mut b = head(3, 1 << 60, 0);
    b.resize(64, 0);
    assert!(expect_err(&b, "tensor count")
        .to_string()
        .contains("tensor count"));
    let mut b = head(3, 0, u64::MAX);
    b.resize(64, 0);
    expect_err(&b, "metadata count");
    // A key of length 2^60.
    let mut b = head(3, 0, 1);
    b.extend_from_slice(&(1u64 << 60).to_le_bytes());
    b.resize(64, 0);
    assert!(expect_err(&b, "key length")
        .to_string()
        .contains("1152921504606846976"));
    // A string value of length 2^60.
    let mut b = head(3, 0, 1);
    string(&mut b, "k");
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&(1u64 << 60).to_le_bytes());
    b.resize(64, 0);
    expect_err(&b, "string length");
    // Arrays of 2^60 u8 and of 2^61 strings, and arrays of arrays nested deeply.
    for (elem, n) in [(0u32, 1u64 << 60), (8, 1 << 61), (9, 1 << 40)] {
        let mut b = head(3, 0, 1);
        string(&mut b, "k");
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&elem.to_le_bytes());
        b.extend_from_slice(&n.to_le_bytes());
        b.resize(256, 0);
        expect_err(&b, "array length");
    }
    let mut b = head(3, 0, 1);
    string(&mut b, "k");
    b.extend_from_slice(&9u32.to_le_bytes());
    for _ in 0..10 {
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
    }
    b.resize(512, 0);
    assert!(expect_err(&b, "nesting").to_string().contains("nested"));
    // Tensor name length 2^60.
    let mut b = head(3, 1, 0);
    b.extend_from_slice(&(1u64 << 60).to_le_bytes());
    b.resize(128, 0);
    expect_err(&b, "name length");
}

#[test]
fn inconsistent_metadata() {
    // Alignment that is not a power of two.
    let mut w = GgufWriter::new();
    w.add_u32("general.alignment", 48);
    expect_err(&w.to_bytes(), "alignment 48");
    // Q rows that cannot be split into the declared heads.
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "llama")
        .add_u32("llama.attention.head_count", 3);
    w.add_tensor(
        "blk.0.attn_q.weight",
        GgmlType::F32,
        &[32, 32],
        &[0.0; 1024],
    )
    .unwrap();
    assert!(expect_err(&w.to_bytes(), "heads")
        .to_string()
        .contains("rotary heads"));
    // Duplicate tensor names and keys.
    let mut w = GgufWriter::new();
    w.add_tensor("x", GgmlType::F32, &[1], &[0.0]).unwrap();
    w.add_tensor("x", GgmlType::F32, &[1], &[0.0]).unwrap();
    expect_err(&w.to_bytes(), "duplicate tensor");
    let mut b = head(3, 0, 2);
    for _ in 0..2 {
        string(&mut b, "k");
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(1);
    }
    expect_err(&b, "duplicate key");
    // Unknown metadata value type.
    let mut b = head(3, 0, 1);
    string(&mut b, "k");
    b.extend_from_slice(&13u32.to_le_bytes());
    b.resize(64, 0);
    expect_err(&b, "value type 13");
}

#[test]
fn non_default_alignment_round_trips() {
    let m = model();
    let mut w = GgufWriter::new().with_alignment(64);
    w.add_string("general.architecture", "llama");
    w.add_tensor(
        "blk.0.ffn_down.weight",
        GgmlType::Q5K,
        &[HIDDEN as u64, FFN as u64],
        &m.down,
    )
    .unwrap();
    w.add_tensor(
        "output_norm.weight",
        GgmlType::F32,
        &[HIDDEN as u64],
        &m.norm,
    )
    .unwrap();
    let (_dir, path) = write_temp(&w.to_bytes());
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.header().alignment, 64);
    assert!(f.tensors().iter().all(|t| t.offset % 64 == 0));
    assert_eq!(read_all(&f, "model.norm.weight"), m.norm);
    assert!(rel_rms_error(&read_all(&f, "blk.0.ffn_down.weight"), &m.down) < bound(GgmlType::Q5K));
}

// ---------------------------------------------------------------------------------------------------------------
// The fuzz corpus (fuzz/corpus/gguf): every seed goes through the fuzz entry point without panicking, the
// valid seeds parse and decode, the broken ones are errors.

#[test]
fn fuzz_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/gguf");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "expected the gguf seed corpus in {}",
        dir.display()
    );
    let valid = [
        "align64.gguf",
        "all_types.gguf",
        "gguf_py_small.gguf",
        "qk_permuted_f32.gguf",
        "valid_q8_0.gguf",
        "vocab_gpt2.gguf",
        "vocab_spm.gguf",
    ];
    for file in files {
        let data = std::fs::read(&file).unwrap();
        provsearch_formats::fuzzing::fuzz_gguf(&data);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let parsed = GgufFile::parse(&file, &data);
        assert_eq!(
            parsed.is_ok(),
            valid.contains(&name.as_str()),
            "{name}: {parsed:?}"
        );
        if name == "all_types.gguf" {
            let (_dir, path) = write_temp(&data);
            let f = GgufFile::open(&path).unwrap();
            assert_eq!(f.tensors().len(), 15);
            for t in f.tensors() {
                let ty = t.ggml_type.name();
                let want = read_f32_file(&data_dir().join(format!("{ty}.f32")));
                let got = read_all(&f, &t.name);
                assert_eq!(got, want[..got.len()], "{ty}");
            }
        }
    }
}

#[test]
fn hand_built_tensors_cannot_make_reads_panic() {
    // GgufTensor's fields are public: a caller can pass a tensor that parse would never produce.
    let m = model();
    let (_dir, path) = write_temp(&llama_file(GgmlType::Q4K, &m));
    let f = GgufFile::open(&path).unwrap();
    let good = f.tensor("blk.0.attn_q.weight").unwrap().clone();
    let mut out = [0f32; 8];
    let mut t = good.clone();
    t.unpermute_heads = Some(1000);
    assert!(f.read_f32(&t, 0, &mut out).is_err(), "more heads than rows");
    let mut t = good.clone();
    t.unpermute_heads = Some(0);
    assert!(f.read_f32(&t, 0, &mut out).is_err(), "zero heads");
    let mut t = good.clone();
    t.offset = u64::MAX - 4;
    assert!(
        f.read_f32(&t, 0, &mut out).is_err(),
        "offset beyond the file"
    );
    let mut t = good.clone();
    t.len = 10;
    assert!(
        f.read_f32(&t, 0, &mut out).is_err(),
        "length shorter than the blocks"
    );
    let mut t = good.clone();
    t.dims = vec![256, u64::MAX, 4];
    t.unpermute_heads = None;
    assert!(
        f.read_f32(&t, u64::MAX - 100, &mut out).is_err(),
        "overflowing dims"
    );
    let mut t = good.clone();
    t.dims = vec![0, 256];
    assert!(f.read_f32(&t, 0, &mut out).is_err(), "empty rows");
    // The same through pread.
    for (what, change) in [
        (
            "more heads than rows",
            (|t: &mut GgufTensor| t.unpermute_heads = Some(1000)) as fn(&mut GgufTensor),
        ),
        ("offset beyond the file", |t| t.offset = u64::MAX - 4),
        ("length shorter than the blocks", |t| t.len = 10),
        ("data past the end of the file", |t| t.offset += 1 << 20),
        ("empty rows", |t| t.dims = vec![0, 256]),
    ] {
        let mut t = good.clone();
        change(&mut t);
        assert!(f.pread_f32(&t, 0, &mut out).is_err(), "{what}");
    }
}

#[test]
fn string_arrays_are_packed_and_read_like_single_strings() {
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "llama")
        .add_strings("tokenizer.ggml.tokens", &["a", "", "Ġé", "<s>"])
        .add_strings("empty", &[] as &[&str])
        .add_metadata(
            "nested",
            GgufValue::Array(vec![GgufValue::StringArray(Box::new(
                ["x", "y"].into_iter().collect(),
            ))]),
        );
    let bytes = w.to_bytes();
    let h = GgufFile::parse(Path::new("s.gguf"), &bytes).unwrap();
    let tokens = h.get("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.as_string_array().unwrap(), &["a", "", "Ġé", "<s>"]);
    assert_eq!((tokens.array_len(), tokens.as_array()), (Some(4), None));
    assert_eq!(h.get("empty").unwrap().array_len(), Some(0));
    let nested = h.get("nested").unwrap().as_array().unwrap();
    assert_eq!(nested[0].as_string_array().unwrap(), &["x", "y"]);

    // Invalid UTF-8 in one string is replaced in that string only, as for a single string value; a string
    // cut inside a character too.
    let mut raw = bytes.clone();
    let at = raw.windows(4).position(|w| w == "Ġé".as_bytes()).unwrap();
    raw[at + 2] = 0xff;
    let h = GgufFile::parse(Path::new("s.gguf"), &raw).unwrap();
    let tokens = h
        .get("tokenizer.ggml.tokens")
        .unwrap()
        .as_string_array()
        .unwrap();
    assert_eq!(tokens, &["a", "", "Ġ\u{fffd}\u{fffd}", "<s>"]);
    // Two strings that are valid UTF-8 together but not apart (a character cut between them): each is
    // converted on its own.
    let mut w = GgufWriter::new();
    w.add_strings("cut", &["QQ", "ZZ"]);
    let mut raw = w.to_bytes();
    let at = raw.windows(2).position(|w| w == b"QQ").unwrap();
    raw[at + 1] = 0xc3;
    let at = raw.windows(2).position(|w| w == b"ZZ").unwrap();
    raw[at] = 0xa9;
    let h = GgufFile::parse(Path::new("s.gguf"), &raw).unwrap();
    let cut = h.get("cut").unwrap().as_string_array().unwrap();
    assert_eq!(cut, &["Q\u{fffd}", "\u{fffd}Z"]);

    // Arrays of strings cut anywhere are errors (the header ends at most 31 bytes of padding before the data).
    let whole = GgufFile::parse(Path::new("s.gguf"), &bytes).unwrap();
    let header_end = whole.data_offset as usize - 31;
    for cut in 24..header_end {
        let err = GgufFile::parse(Path::new("s.gguf"), &bytes[..cut]).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "cut at {cut}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// gguf-split parts

#[test]
fn split_parts_read_like_the_whole_file() {
    use provsearch_formats::gguf::split::{part_file_name, SplitInfo, SplitName};
    let m = model();
    let whole_writer = llama_writer(GgmlType::Q8_0, &m);
    let (dir, whole_path) = write_temp(&whole_writer.to_bytes());
    let whole = GgufFile::open(&whole_path).unwrap();
    assert_eq!(whole.header().split(), None);
    // gguf-split --split-max-tensors 2: embedding + Q, then K + down, then the norm.
    let parts = whole_writer.split(2, false);
    assert_eq!(parts.len(), 3);
    let paths: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(part_file_name("m-Q8_0", i + 1, 3)))
        .collect();
    for (part, path) in parts.iter().zip(&paths) {
        part.write(path).unwrap();
    }
    let name = SplitName::parse(&paths[1].file_name().unwrap().to_string_lossy()).unwrap();
    assert_eq!(name.part_paths(dir.path()), paths);

    let first = GgufFile::open(&paths[0]).unwrap();
    assert_eq!(
        first.header().split(),
        Some(SplitInfo {
            no: 0,
            count: 3,
            tensors: Some(5)
        })
    );
    assert_eq!(first.architecture(), Some("llama"));
    // A later part holds only the split keys; alone, its tensors keep llama.cpp names and stay permuted.
    let alone = GgufFile::open(&paths[1]).unwrap();
    assert_eq!(alone.header().metadata.len(), 3);
    assert_eq!(alone.architecture(), None);
    assert_eq!(alone.tensors()[0].hf_name, None);
    assert_eq!(alone.tensors()[0].unpermute_heads, None);
    // With the first part's metadata, it reads exactly like the whole file.
    let second = GgufFile::open_part(&paths[1], first.header()).unwrap();
    assert_eq!(
        second.header().split().map(|s| (s.no, s.count)),
        Some((1, 3))
    );
    let k = second
        .tensor("model.layers.0.self_attn.k_proj.weight")
        .unwrap();
    assert_eq!(k.unpermute_heads, Some(KV_HEADS as u32));
    for name in [
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
    ] {
        assert_eq!(read_all(&second, name), read_all(&whole, name), "{name}");
    }
    let third = GgufFile::open_part(&paths[2], first.header()).unwrap();
    assert_eq!(
        read_all(&third, "model.layers.0.input_layernorm.weight"),
        m.norm
    );

    // --no-tensor-first-split: the first part is metadata only.
    let parts = whole_writer.split(5, true);
    assert_eq!(parts.len(), 2);
    assert!(parts[0].to_bytes().len() < 4096);
    let (_d, p0) = write_temp(&parts[0].to_bytes());
    let f = GgufFile::open(&p0).unwrap();
    assert!(f.tensors().is_empty());
    assert_eq!(f.header().split().map(|s| s.count), Some(2));
}
