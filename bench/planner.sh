#!/usr/bin/env bash
# Benchmark 3a, planner: `keg plan --json --all` on generated libraries of 200, 2,000 and
# 20,000 entries (200 git repositories with 1, 10 and 100 entries each, FROM edges between
# repositories), with a warm git cache and no engine. Reports time and peak RSS per size
# and the growth from 2,000 to 20,000 entries. Target: near-linear, 20,000 within 12x of
# 2,000.
#
# Usage: bench/planner.sh   (KEG_BENCH_RUNS=5; KEG_BENCH_SIZES="1 10 100" entries per repo)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

runs=${KEG_BENCH_RUNS:-5}
repos=200
sizes=${KEG_BENCH_SIZES:-1 10 100}
max=0
for s in $sizes; do ((s > max)) && max=$s; done
bench_tmp
machine

start=$(now_ns)
gen_repos "$work" "$repos" "$max"
echo "fixtures: $repos repositories x $max directories in $(ms_since "$start") ms"
cache=$work/cache
no_docker=(env PATH=/nonexistent)

declare -A ms rss
for s in $sizes; do
	lib=$work/lib-$s
	gen_manifests "$work" "$lib" "$repos" "$s"
	n=$((repos * s))
	if [ ! -d "$cache" ]; then
		start=$(now_ns)
		"$KEG" --library "$lib" --cache "$cache" fetch --all
		echo "cold fetch --all of $repos repositories: $(ms_since "$start") ms"
	fi
	args=(--library "$lib" --cache "$cache" plan --json --all)
	nodes=$("${no_docker[@]}" "$KEG" "${args[@]}" | grep -c '"id": ' || true)
	out=$(measure_ms "$runs" "${no_docker[@]}" "$KEG" "${args[@]}")
	read -r median min _ <<<"$out"
	kb=$(peak_rss_kb "${no_docker[@]}" "$KEG" "${args[@]}")
	ms[$n]=$median
	rss[$n]=$kb
	echo "  $n entries ($nodes nodes): median $median ms, min $min ms, peak RSS $((kb / 1024)) MiB"
done

echo "method: date +%s%N loop, 1 warm-up + $runs runs, median (min); plan --json --all, warm cache, no engine"
for n in "${!ms[@]}"; do echo "$n"; done | sort -n | while read -r n; do
	result "plan --json, $n entries" "${ms[$n]}" ms
	result "plan --json, $n entries, peak RSS" "$(awk -v k="${rss[$n]}" 'BEGIN {printf "%.1f", k / 1024}')" MiB
done
if [ -n "${ms[2000]:-}" ] && [ -n "${ms[20000]:-}" ]; then
	ratio=$(awk -v a="${ms[20000]}" -v b="${ms[2000]}" 'BEGIN {printf "%.1f", a / b}')
	result "plan growth 2,000 -> 20,000 entries" "$ratio" x "<= 12x" \
		"$(awk -v r="$ratio" 'BEGIN {print (r <= 12) ? "met" : "NOT met"}')"
	result "plan RSS growth 2,000 -> 20,000 entries" \
		"$(awk -v a="${rss[20000]}" -v b="${rss[2000]}" 'BEGIN {printf "%.1f", a / b}')" x
fi
