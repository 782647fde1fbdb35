#!/usr/bin/env bash
# Benchmark 1, manifests: `keg --library <corpus> list --all` end to end on the 144 real
# Official Images manifests (process start to exit), its peak RSS, and the in-process phases
# (bench/manifest.rs). Target: under 7 ms (bashbrew: 68 ms, 24 MiB on this kind of machine).
#
# Usage: bench/manifest.sh [CORPUS_LIBRARY_DIR]
#   KEG_BENCH_RUNS=50       timed runs (median and min are reported)
#   KEG_BENCH_INPROCESS=0   skip `cargo bench --bench manifest`
set -euo pipefail
. "$(dirname "$0")/lib.sh"

corpus=${1:-$bench_root/../shared/corpus/official-images/library}
corpus=$(realpath "$corpus")
runs=${KEG_BENCH_RUNS:-50}
bench_tmp

machine
# Sanity: the output is bashbrew's (scripts/conformance checks it byte for byte).
lines=$("$KEG" --library "$corpus" list --all | wc -l)
echo "corpus: $corpus ($(find "$corpus" -maxdepth 1 -type f | wc -l) files, $(cat "$corpus"/* | wc -c) bytes, $lines list lines)"

if command -v hyperfine >/dev/null; then
	out=$(hyperfine_ms "$runs" "$KEG" --library "$corpus" list --all)
	read -r median min <<<"$out"
	method="hyperfine -N, 5 warm-up + $runs runs"
else
	out=$(measure_ms "$runs" "$KEG" --library "$corpus" list --all)
	read -r median min _ <<<"$out"
	method="date +%s%N loop, 1 warm-up + $runs runs"
fi
rss=$(for _ in 1 2 3 4 5; do peak_rss_kb "$KEG" --library "$corpus" list --all; done | stats | cut -d' ' -f1)

if [ "${KEG_BENCH_INPROCESS:-1}" = 1 ]; then
	echo "in process (cargo bench --bench manifest):"
	(cd "$bench_root" && cargo bench --quiet --bench manifest -- "$corpus" 2>/dev/null) | sed 's/^/  /'
fi

echo "method: $method"
met=$(awk -v m="$median" 'BEGIN {print (m < 7) ? "met" : "NOT met"}')
result "list --all median" "$median" ms "< 7 ms" "$met"
result "list --all min" "$min" ms
result "list --all peak RSS (median of 5)" "$(awk -v k="${rss%.*}" 'BEGIN {printf "%.1f", k / 1024}')" MiB
