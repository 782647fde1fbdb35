#!/usr/bin/env bash
# Benchmark 2a, sources: warm-cache Dockerfile reads and scans. 2,000 entries over 200
# generated git repositories (10 directories each); after one `keg fetch --all` fills the
# cache, `keg from --all` resolves every entry's source (pin check, tree id, last change,
# Dockerfile read and scan) and prints its parents. Target: >= 10,000 entries/s, measured
# on the whole command (startup and manifest parsing included). `plan --json` (no engine)
# on the same warm cache is reported alongside.
#
# Usage: bench/sources.sh   (KEG_BENCH_RUNS=10, KEG_BENCH_REPOS=200, KEG_BENCH_ENTRIES=10)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

runs=${KEG_BENCH_RUNS:-10}
repos=${KEG_BENCH_REPOS:-200}
per_repo=${KEG_BENCH_ENTRIES:-10}
entries=$((repos * per_repo))
bench_tmp
machine

start=$(now_ns)
gen_library "$work" "$repos" "$per_repo"
echo "fixtures: $repos repositories x $per_repo entries = $entries entries in $(ms_since "$start") ms"
lib=(--library "$work/library" --cache "$work/cache")
# No engine for plan: it would add a `docker image ls` per run.
no_docker=(env PATH=/nonexistent)

start=$(now_ns)
"$KEG" "${lib[@]}" fetch --all
echo "cold fetch --all: $(ms_since "$start") ms"
test "$("$KEG" "${lib[@]}" from --all | wc -l)" -eq $((2 * entries))

out=$(measure_ms "$runs" "$KEG" "${lib[@]}" from --all)
read -r from_median from_min _ <<<"$out"
out=$(measure_ms "$runs" "${no_docker[@]}" "$KEG" "${lib[@]}" plan --json --all)
read -r plan_median plan_min _ <<<"$out"
from_rss=$(peak_rss_kb "$KEG" "${lib[@]}" from --all)

rate=$(awk -v n="$entries" -v ms="$from_median" 'BEGIN {printf "%.0f", n / (ms / 1000)}')
echo "method: date +%s%N loop, 1 warm-up + $runs runs, median (min)"
result "from --all, $entries entries, warm" "$from_median ($from_min)" ms
result "from --all peak RSS" "$((from_rss / 1024))" MiB
result "plan --json, $entries entries, warm, no engine" "$plan_median ($plan_min)" ms
result "warm source resolution rate (from --all)" "$rate" entries/s ">= 10000/s" \
	"$(awk -v r="$rate" 'BEGIN {print (r >= 10000) ? "met" : "NOT met"}')"
