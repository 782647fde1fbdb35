#!/usr/bin/env bash
# Benchmark 4b, fully cached re-run on the real engine: 50 entries (5 repositories x 10,
# chained FROM edges) are built once, then `keg build --all` runs again with nothing to do.
# Reports the re-run's wall time (median of KEG_BENCH_RUNS) and how many `docker` calls it
# makes, counted by a logging `docker` wrapper first on PATH that execs the real client.
# Target: under 0.6 s. Removes every image it makes and prunes dangling build cache.
#
# Usage: bench/build-cached.sh   (KEG_BENCH_RUNS=5, KEG_BENCH_JOBS=4 for the first build)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

runs=${KEG_BENCH_RUNS:-5}
jobs=${KEG_BENCH_JOBS:-4}
real_docker=$(command -v docker) || {
	echo "no docker client: run scripts/setup-docker" >&2
	exit 1
}
docker version --format '{{.Server.Version}}' >/dev/null
bench_tmp
prefix=kegbench-$$-$(date +%s)
cleanup_hook() {
	"$real_docker" image ls --format '{{.Repository}}:{{.Tag}}' | grep "^$prefix" |
		xargs -r "$real_docker" image rm -f >/dev/null
	"$real_docker" builder prune -f >/dev/null
}
machine

# 5 repositories x 10 entries; bench-r<i> is FROM bench-r<i/2>, under this run's prefix.
gen_repos "$work" 5 10
gen_manifests "$work" "$work/library" 5 10
for f in "$work"/library/bench-r*; do mv "$f" "$work/library/$prefix-${f##*/}"; done
sed -i "s/FROM bench-r/FROM $prefix-bench-r/" "$work"/repos/r*/d*/Dockerfile
for ((r = 0; r < 5; r++)); do
	commit=$(git_commit_all "$work/repos/r$r" prefixed)
	sed -i "s/^GitCommit: .*/GitCommit: $commit/" "$work/library/$prefix-bench-r$r"
done

# The logging wrapper.
mkdir -p "$work/bin"
calls=$work/docker-calls.log
printf '#!/bin/sh\necho "$*" >>"%s"\nexec "%s" "$@"\n' "$calls" "$real_docker" >"$work/bin/docker"
chmod +x "$work/bin/docker"
export PATH=$work/bin:$PATH

args=(--library "$work/library" --cache "$work/cache" build --all --cache-repo "$prefix-cache")
start=$(now_ns)
"$KEG" "${args[@]}" --jobs "$jobs" >"$work/first.out" 2>&1 || {
	cat "$work/first.out" >&2
	exit 1
}
echo "first build: $(tail -1 "$work/first.out") (wall $(ms_since "$start") ms, $(wc -l <"$calls") docker calls)"

: >"$calls"
"$KEG" "${args[@]}" >"$work/again.out" 2>&1
tail -1 "$work/again.out" | grep -q '^0 built, 50 cached' || {
	echo "the re-run was not fully cached:" >&2
	cat "$work/again.out" >&2
	exit 1
}
ncalls=$(wc -l <"$calls")
echo "docker calls of one cached re-run:"
sed 's/^/  docker /' "$calls"

out=$(measure_ms "$runs" "$KEG" "${args[@]}")
read -r median min _ <<<"$out"
echo "method: date +%s%N loop, 1 warm-up + $runs runs, median (min)"
result "cached re-run of 50 entries" "$(awk -v m="$median" 'BEGIN {printf "%.3f", m / 1000}') ($(awk -v m="$min" 'BEGIN {printf "%.3f", m / 1000}'))" s \
	"< 0.6 s" "$(awk -v m="$median" 'BEGIN {print (m < 600) ? "met" : "NOT met"}')"
result "docker calls in a cached re-run" "$ncalls" calls
