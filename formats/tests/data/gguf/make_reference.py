#!/usr/bin/env python3
"""Reference fixtures for formats/tests/gguf.rs, made OFFLINE with llama.cpp's gguf-py (`pip install gguf numpy`).

Run from this directory: `python3 make_reference.py`. The Rust tests never call Python; they read what this
script wrote:

- `<TYPE>.q` / `<TYPE>.f32`: a few random blocks of each quantized type (with finite, realistic f16 scales) and
  what gguf.quants.dequantize makes of them (little-endian f32). gguf-py mirrors ggml's dequantizers, so this is
  an independent check of formats/src/gguf/dequant.rs.
- `gguf_py_small.gguf`: a tiny llama-architecture file written by gguf-py's GGUFWriter, whose Q and K tensors are
  permuted with the converter's LlamaModel.permute, plus `gguf_py_small.<name>.f32`: the Hugging Face
  (unpermuted) values of each tensor that the Rust reader must give back.
"""
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

rng = np.random.default_rng(20240605)


def f16_bytes(values):
    return np.asarray(values, dtype=np.float16).view(np.uint8)


# (type, number of blocks, byte offsets of f16 scale fields)
QUANTS = [
    (T.Q4_0, 4, [0]),
    (T.Q4_1, 4, [0, 2]),
    (T.Q5_0, 4, [0]),
    (T.Q5_1, 4, [0, 2]),
    (T.Q8_0, 4, [0]),
    (T.Q2_K, 2, [80, 82]),
    (T.Q3_K, 2, [108]),
    (T.Q4_K, 2, [0, 2]),
    (T.Q5_K, 2, [0, 2]),
    (T.Q6_K, 2, [208]),
    (T.IQ4_NL, 4, [0]),
    (T.IQ4_XS, 2, [0]),
    (T.TQ2_0, 2, [64]),
    (T.MXFP4, 4, []),
]

for qtype, n_blocks, scale_offsets in QUANTS:
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in scale_offsets:
        # Positive and negative scales of the size real checkpoints have.
        scales = rng.uniform(0.0005, 0.05, size=n_blocks) * rng.choice([-1.0, 1.0], size=n_blocks)
        blocks[:, off:off + 2] = f16_bytes(scales).reshape(n_blocks, 2)
    if qtype == T.MXFP4:
        blocks[:, 0] = rng.integers(110, 135, size=n_blocks)  # e8m0 exponents around 2^-10 .. 2^8
    expected = dequantize(blocks.reshape(-1), qtype).astype("<f4")
    assert expected.size == n_blocks * block_size and np.all(np.isfinite(expected))
    blocks.tofile(f"{qtype.name}.q")
    expected.tofile(f"{qtype.name}.f32")

for qtype in (T.F16, T.BF16):
    values = rng.normal(0, 0.02, size=64).astype(np.float32)
    raw = quantize(values, qtype)
    raw.view(np.uint8).tofile(f"{qtype.name}.q")
    expected = dequantize(raw.view(np.uint8) if qtype == T.BF16 else raw, qtype).astype("<f4")
    expected.tofile(f"{qtype.name}.f32")


def llama_permute(weights, n_head, n_head_kv):
    # convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


hidden, n_head, n_kv, ffn, vocab = 32, 4, 2, 64, 8
head_dim = hidden // n_head
w = gguf.GGUFWriter("gguf_py_small.gguf", "llama")
w.add_block_count(1)
w.add_context_length(128)
w.add_embedding_length(hidden)
w.add_feed_forward_length(ffn)
w.add_head_count(n_head)
w.add_head_count_kv(n_kv)
w.add_rope_freq_base(10000.0)
w.add_layer_norm_rms_eps(1e-5)
w.add_tokenizer_model("gpt2")
tokens = ["<s>", "</s>", "a", "b", "Ġa", "ab", "Ġab", "c"]
w.add_token_list(tokens)
w.add_token_types([3, 3, 1, 1, 1, 1, 1, 1])
w.add_token_merges(["a b", "Ġ a", "Ġa b"])
w.add_bos_token_id(0)
w.add_eos_token_id(1)

hf = {
    "token_embd.weight": rng.normal(0, 0.02, size=(vocab, hidden)).astype(np.float32),
    "blk.0.attn_q.weight": rng.normal(0, 0.02, size=(n_head * head_dim, hidden)).astype(np.float32),
    "blk.0.attn_k.weight": rng.normal(0, 0.02, size=(n_kv * head_dim, hidden)).astype(np.float32),
    "blk.0.ffn_up.weight": rng.normal(0, 0.02, size=(ffn, hidden)).astype(np.float32),
}
w.add_tensor("token_embd.weight", hf["token_embd.weight"])
w.add_tensor("blk.0.attn_q.weight", llama_permute(hf["blk.0.attn_q.weight"], n_head, n_head))
w.add_tensor("blk.0.attn_k.weight", llama_permute(hf["blk.0.attn_k.weight"], n_head, n_kv))
q8 = quantize(hf["blk.0.ffn_up.weight"], T.Q8_0)
w.add_tensor("blk.0.ffn_up.weight", q8, raw_dtype=T.Q8_0)
hf["blk.0.ffn_up.weight"] = dequantize(q8, T.Q8_0)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
for name, values in hf.items():
    values.astype("<f4").tofile(f"gguf_py_small.{name}.f32")
