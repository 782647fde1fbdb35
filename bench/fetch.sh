#!/usr/bin/env bash
# Benchmark 3b, fetch: `keg fetch --all` of 200 generated repositories (one commit, one
# entry each) into one bare cache, in 4 batches of 50 repositories: if fetching slows down
# as the cache fills (more packs, more refs), later batches take longer than the first.
# Reports each batch, the total, and the last/first batch ratio (1.0 = no slowdown).
#
# Usage: bench/fetch.sh   (KEG_BENCH_REPOS=200, KEG_BENCH_BATCH=50)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

repos=${KEG_BENCH_REPOS:-200}
batch=${KEG_BENCH_BATCH:-50}
bench_tmp
machine

start=$(now_ns)
gen_repos "$work" "$repos" 1
echo "fixtures: $repos repositories in $(ms_since "$start") ms"

total=0
first=
last=
for ((from = 0; from < repos; from += batch)); do
	to=$((from + batch < repos ? from + batch : repos))
	lib=$work/lib-$from
	gen_manifests "$work" "$lib" "$to" 1 "$from"
	start=$(now_ns)
	"$KEG" --library "$lib" --cache "$work/cache" fetch --all
	ms=$(ms_since "$start")
	packs=$(find "$work/cache/git/objects/pack" -name '*.pack' | wc -l)
	refs=$(find "$work/cache/git/refs" -type f | wc -l)
	echo "  repositories $from..$((to - 1)): $ms ms ($(awk -v m="$ms" -v n=$((to - from)) 'BEGIN {printf "%.1f", m / n}') ms each); cache now $packs packs, $refs loose refs"
	total=$(awk -v a="$total" -v b="$ms" 'BEGIN {print a + b}')
	first=${first:-$ms}
	last=$ms
done
# The same cache, warm: nothing to fetch.
gen_manifests "$work" "$work/lib-all" "$repos" 1
start=$(now_ns)
"$KEG" --library "$work/lib-all" --cache "$work/cache" fetch --all
warm=$(ms_since "$start")

echo "method: one run per batch (a fetch changes the cache, so it cannot be repeated)"
result "fetch of $repos repositories into one cache, total" "$total" ms
result "fetch slowdown, last batch / first batch" "$(awk -v a="$last" -v b="$first" 'BEGIN {printf "%.2f", a / b}')" x
result "fetch --all again, everything cached" "$warm" ms
