#!/usr/bin/env bash
# Regenerate the trained lineage zoo into datasets/zoo/trained/ (deterministic:
# fixed seeds, one thread). Run ./fetch-corpus.sh first.
#
#   ./train-zoo.sh            # every model, then MANIFEST.json
#   ./train-zoo.sh L-base G-base   # only these (their parents must exist)
#
# Each model's exact command is also written into its README.md and into
# MANIFEST.json. Timings of the last run: target/zoo-records/<name>.json.
set -euo pipefail
cd "$(dirname "$0")"

export CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1 RAYON_RS_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
cargo build --release -j 1 --quiet
BIN=target/release/provsearch-trainer
ZOO=../datasets/zoo/trained
REC=target/zoo-records
C=.corpus
EN_BASE=("$C/en/fortunes.txt" "$C/en/bible.txt")

ALL=(L-base L-seed2 L-small L-big L-otherdata L-othertok
     L-ft-shakespeare L-cpt L-vocab-jargon L-distill L-pruned L-cpt-ft-jargon
     G-base G-seed2 G-ft-jargon G-cpt L-sameinit G-sameinit L-ft-heavy L-widthpruned
     L-widthgrown L-upscaled)
if [ $# -gt 0 ]; then WANT=("$@"); else WANT=("${ALL[@]}"); fi
want() { local m; for m in "${WANT[@]}"; do [ "$m" = "$1" ] && return 0; done; return 1; }

train() { # train NAME ARGS...
  local name=$1; shift
  want "$name" || return 0
  rm -rf "${ZOO:?}/$name"
  "$BIN" train --name "$name" --out "$ZOO/$name" --record-dir "$REC" "$@"
}

# ---------------------------------------------------------------- L family
LLAMA=(--arch llama --hidden 64 --layers 4 --heads 4 --max-positions 256)

train L-base --family L --mechanism base "${LLAMA[@]}" \
  --description "Base model of the L family: a tiny Llama trained from scratch on English fortunes and the KJV Bible, with its own byte-level BPE tokenizer (T-en)." \
  --train-tokenizer-on "${EN_BASE[@]}" --tokenizer-vocab 2048 \
  --data "${EN_BASE[@]}" --seed 1 --steps 1000

# Traps: independent of L-base although they share a lot with it.
train L-seed2 --family L --independent-of L-base --mechanism independent-reproduction "${LLAMA[@]}" \
  --description "Independent reproduction of L-base: same architecture, tokenizer recipe, data and schedule, different seed. Not derived from L-base." \
  --train-tokenizer-on "${EN_BASE[@]}" --tokenizer-vocab 2048 \
  --data "${EN_BASE[@]}" --seed 2 --steps 1000

train L-small --family L --independent-of L-base --mechanism same-family-different-size \
  --arch llama --hidden 48 --layers 2 --heads 4 --max-positions 256 \
  --description "Smaller sibling of L-base (hidden 48, 2 layers), same tokenizer recipe and data, trained from scratch. Not derived from L-base." \
  --train-tokenizer-on "${EN_BASE[@]}" --tokenizer-vocab 2048 \
  --data "${EN_BASE[@]}" --seed 3 --steps 600

train L-big --family L --independent-of L-base --mechanism same-family-different-size \
  --arch llama --hidden 96 --layers 4 --heads 4 --max-positions 256 \
  --description "Bigger sibling of L-base (hidden 96), same tokenizer recipe and data, trained from scratch. Not derived from L-base." \
  --train-tokenizer-on "${EN_BASE[@]}" --tokenizer-vocab 2048 \
  --data "${EN_BASE[@]}" --seed 4 --steps 600

train L-otherdata --family L --independent-of L-base --mechanism same-tokenizer-other-data "${LLAMA[@]}" \
  --description "L-base's architecture and tokenizer (T-en), trained from scratch on German, Spanish and Italian fortunes. Not derived from L-base." \
  --train-tokenizer-on "${EN_BASE[@]}" --tokenizer-vocab 2048 \
  --data "$C/de/fortunes.txt" "$C/es/fortunes.txt" "$C/it/fortunes.txt" --seed 5 --steps 600

train L-othertok --family L --independent-of L-base --mechanism same-architecture-other-tokenizer "${LLAMA[@]}" \
  --description "L-base's architecture and data, but its own tokenizer trained on other text (Shakespeare, Milton, the Devil's Dictionary, the Jargon File); trained from scratch. Not derived from L-base." \
  --train-tokenizer-on "$C/en/shakespeare.txt" "$C/en/milton.txt" "$C/en/devil.txt" "$C/en/jargon.txt" --tokenizer-vocab 2048 \
  --data "${EN_BASE[@]}" --seed 6 --steps 600

# The same seed as L-base, hence the same random initial weights, trained from them on other data: the
# constitution's "same architecture in independent runs (even with a shared seed)" (the Pythia / Pythia-deduped
# kind of pair). Not derived from L-base.
train L-sameinit --family L --independent-of L-base --mechanism same-seed-independent-run "${LLAMA[@]}" \
  --description "L-base's architecture, tokenizer and seed, so the same random initial weights, trained from them independently on the Devil's Dictionary and the Jargon File. Shares L-base's initialisation, not its training: not derived from L-base." \
  --tokenizer "$ZOO/L-base/tokenizer.json" \
  --data "$C/en/devil.txt" "$C/en/jargon.txt" --seed 1 --steps 1000

# Derived from L-base.
train L-ft-shakespeare --family L --mechanism fine-tuning --relation finetune \
  --init "$ZOO/L-base" \
  --description "Fine-tune of L-base on Shakespeare's plays and poems." \
  --data "$C/en/shakespeare.txt" --seed 11 --steps 400 --lr 1e-3 --warmup 20

train L-cpt --family L --mechanism continued-pretraining --relation finetune \
  --init "$ZOO/L-base" \
  --description "Continued pretraining of L-base on its own corpus plus Milton, the Devil's Dictionary and the Jargon File (longer than the fine-tunes)." \
  --data "${EN_BASE[@]}" "$C/en/milton.txt" "$C/en/devil.txt" "$C/en/jargon.txt" --seed 12 --steps 800 --lr 2e-3 --warmup 40

train L-vocab-jargon --family L --mechanism vocabulary-extension \
  --init "$ZOO/L-base" \
  --description "L-base with 200 tokens added to its tokenizer (new vocab and merge entries learned on the Jargon File), embedding and lm_head rows extended (each new row = mean of the rows of the tokens it merges), then trained on the Jargon File." \
  --extend-tokenizer-on "$C/en/jargon.txt" --extend-tokens 200 \
  --data "$C/en/jargon.txt" --seed 13 --steps 400 --lr 2e-3 --warmup 20

train L-distill --family L --mechanism distillation \
  --teacher "$ZOO/L-base" --temperature 2 \
  --arch llama --hidden 48 --layers 2 --heads 4 --max-positions 256 \
  --description "Student distilled from L-base (hidden 48, 2 layers, fresh random init) on the teacher's temperature-2 soft outputs over L-base's corpus. It shares no weights with the teacher, so weight signals may not detect it; only the teacher's tokenizer is shared." \
  --data "${EN_BASE[@]}" --seed 14 --steps 600

train L-pruned --family L --mechanism pruning \
  --init "$ZOO/L-base" --drop-layers 2 --prune-mlp 128 \
  --description "Structurally pruned L-base: the third of its 4 layers (index 2) removed and every MLP cut from 176 to 128 neurons (largest |gate|·|up|·|down| kept), then trained on L-base's corpus to heal." \
  --data "${EN_BASE[@]}" --seed 15 --steps 400 --lr 1.5e-3 --warmup 20

# Width pruning of the residual stream (Minitron / Sheared-LLaMA): hidden 64 -> 48, heads kept (explicit head_dim 16).
train L-widthpruned --family L --mechanism pruning \
  --init "$ZOO/L-base" --prune-hidden 48 \
  --description "Width-pruned L-base: the residual stream (hidden size) cut from 64 to 48 channels, keeping the channels with the largest weight-only importance (RMS over the vocabulary of the one-token residual stream entering each RMSNorm, summed), in their original order; embeddings, norms, the q/k/v/gate/up inputs, the o_proj/down_proj outputs and lm_head sliced alike, all 4 heads kept at head_dim 16; then trained on L-base's corpus to heal." \
  --data "${EN_BASE[@]}" --seed 17 --steps 400 --lr 1.5e-3 --warmup 20

# Width growth of the residual stream (scaled transfer: phi-2 from phi-1.5, bert2BERT / Net2WiderNet): hidden 64 -> 96.
train L-widthgrown --family L --mechanism width-growth \
  --init "$ZOO/L-base" --grow-hidden 96 \
  --description "Width-grown L-base (scaled transfer into a wider model, as phi-2 from phi-1.5; bert2BERT / Net2WiderNet): the residual stream (hidden size) widened from 64 to 96 channels, the 64 old channels kept in place and each of the 32 new ones a copy of an old channel drawn with the seed: embed_tokens columns, every RMSNorm weight and the o_proj/down_proj output rows copied; the q/k/v/gate/up and lm_head input columns copied, the source and its copies each divided by their number (halved for a single copy); noise of 1% of each tensor's std on the new channels only; all 4 heads kept at head_dim 16; then trained on L-base's corpus." \
  --data "${EN_BASE[@]}" --seed 18 --steps 600 --lr 1.5e-3 --warmup 20

# Depth up-scaling (SOLAR-10.7B; a mergekit passthrough self-merge): 4 layers -> 6.
train L-upscaled --family L --mechanism depth-upscaling \
  --init "$ZOO/L-base" --stack-layers 0,1,2,1,2,3 \
  --description "Depth-upscaled L-base (SOLAR-10.7B style, a mergekit passthrough self-stack): two copies of its 4 layers, the last dropped from the first and the first from the second, concatenated into 6 layers (copies of layers 0, 1, 2, 1, 2, 3); embeddings, final norm and lm_head kept; then continued pretraining on L-base's corpus." \
  --data "${EN_BASE[@]}" --seed 19 --steps 600 --lr 1.5e-3 --warmup 20

# A two-hop chain (transitivity, C5): L-base -> L-cpt -> L-cpt-ft-jargon.
train L-cpt-ft-jargon --family L --mechanism fine-tuning --relation finetune \
  --init "$ZOO/L-cpt" \
  --description "Fine-tune of L-cpt (itself continued pretraining of L-base) on the Jargon File." \
  --data "$C/en/jargon.txt" --seed 16 --steps 300 --lr 1e-3 --warmup 20

train L-ft-heavy --family L --mechanism fine-tuning --relation finetune \
  --init "$ZOO/L-base" \
  --description "A heavy fine-tune of L-base: 3000 steps (three times L-base's own training) at L-base's learning rate on the Devil's Dictionary, the Jargon File and Shakespeare." \
  --data "$C/en/devil.txt" "$C/en/jargon.txt" "$C/en/shakespeare.txt" --seed 31 --steps 3000 --lr 3e-3 --warmup 40

# ---------------------------------------------------------------- G family
GPT2=(--arch gpt2 --hidden 64 --layers 4 --heads 4 --max-positions 128)
TOK_G=(--train-tokenizer-on "$C/en/fortunes.txt" "$C/en/bible.txt" "$C/en/shakespeare.txt" --tokenizer-vocab 2560)

train G-base --family G --mechanism base "${GPT2[@]}" "${TOK_G[@]}" \
  --description "Base model of the G family: a tiny GPT-2 trained from scratch on English fortunes and the KJV Bible, with its own byte-level BPE tokenizer (T-g)." \
  --data "${EN_BASE[@]}" --seed 21 --steps 1000

train G-seed2 --family G --independent-of G-base --mechanism independent-reproduction "${GPT2[@]}" "${TOK_G[@]}" \
  --description "Independent reproduction of G-base: same architecture, tokenizer recipe, data and schedule, different seed. Not derived from G-base." \
  --data "${EN_BASE[@]}" --seed 22 --steps 1000

train G-sameinit --family G --independent-of G-base --mechanism same-seed-independent-run "${GPT2[@]}" \
  --description "G-base's architecture, tokenizer and seed, so the same random initial weights, trained from them independently on the Devil's Dictionary and the Jargon File. Shares G-base's initialisation, not its training: not derived from G-base." \
  --tokenizer "$ZOO/G-base/tokenizer.json" \
  --data "$C/en/devil.txt" "$C/en/jargon.txt" --seed 21 --steps 1000

train G-ft-jargon --family G --mechanism fine-tuning --relation finetune \
  --init "$ZOO/G-base" \
  --description "Fine-tune of G-base on the Jargon File." \
  --data "$C/en/jargon.txt" --seed 23 --steps 400 --lr 1e-3 --warmup 20

train G-cpt --family G --mechanism continued-pretraining --relation finetune \
  --init "$ZOO/G-base" \
  --description "Continued pretraining of G-base on its own corpus plus Milton and the Devil's Dictionary (longer than the fine-tune)." \
  --data "${EN_BASE[@]}" "$C/en/milton.txt" "$C/en/devil.txt" --seed 24 --steps 800 --lr 2e-3 --warmup 40

# MANIFEST.json lists every zoo model that has a record from this machine.
HAVE=()
for m in "${ALL[@]}"; do [ -f "$REC/$m.json" ] && [ -d "$ZOO/$m" ] && HAVE+=("$m"); done
ORDER=$(IFS=,; echo "${HAVE[*]}")
"$BIN" manifest --records "$REC" --order "$ORDER" --out "$ZOO/MANIFEST.json"
echo "zoo: done (${WANT[*]})"
