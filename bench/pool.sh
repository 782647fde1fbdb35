#!/usr/bin/env bash
# The builder pool on the rig's two engines (docs/performance.md, "Builder pool"): the
# makespan of a sleep-heavy DAG (sleeps, so the two cores are not the limit) on one builder
# against two, --jobs 4 per builder, cold each time (the content carries the round, so no
# key and no layer is reused), results pushed to the rig's registry by key.
# Needs scripts/setup-docker --nodes 2. KEG_BENCH_ROUNDS (default 3) rounds; medians.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_tmp
registry=${KEG_TEST_REGISTRY:-127.0.0.1:5000}
base=$registry/keg-test/busybox:latest
prefix="kbq$$"
rounds=${KEG_BENCH_ROUNDS:-3}
roots=8
cleanup_hook() {
	for c in keg-node-1 keg-node-2; do
		docker --context "$c" image ls --no-trunc --format '{{.ID}} {{.Repository}}' 2>/dev/null \
			| awk -v p="$prefix" '$2 ~ p {print $1}' | sort -u | xargs -r docker --context "$c" rmi -f >/dev/null 2>&1 || true
	done
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b - a) / 1e9}'; }

# One library per round and builder count: 8 roots and 8 children, `RUN sleep 10` each.
library() { # NAME
	local dir=$work/$1 c
	mkdir -p "$dir/src" "$dir/lib"
	git -C "$dir/src" init -q
	for r in $(seq 1 $roots); do
		mkdir -p "$dir/src/r$r" "$dir/src/c$r"
		printf 'FROM %s\nRUN sleep 10 && echo %s-r%s > /r.txt\n' "$base" "$1" "$r" >"$dir/src/r$r/Dockerfile"
		printf 'FROM %s-%s-r:%s\nRUN sleep 10 && cat /r.txt > /c.txt\n' "$prefix" "$1" "$r" >"$dir/src/c$r/Dockerfile"
	done
	git -C "$dir/src" add -A && git -C "$dir/src" commit -qm bench
	c=$(git -C "$dir/src" rev-parse HEAD)
	for kind in r c; do
		{
			printf 'Maintainers: Bench (@bench)\nGitRepo: %s\nGitCommit: %s\nBuilder: buildkit\n' "$dir/src" "$c"
			for r in $(seq 1 $roots); do printf '\nTags: %s\nDirectory: %s%s\n' "$r" "$kind" "$r"; done
		} >"$dir/lib/$prefix-$1-$kind"
	done
}
run() { # NAME BUILDER... -> seconds
	local name=$1 t0 t1 args=()
	shift
	for b in "$@"; do args+=(--builder "$b"); done
	library "$name"
	t0=$(now_ns)
	BASHBREW_LIBRARY="$work/$name/lib" BASHBREW_CACHE="$work/cache" "$KEG" build --all --jobs 4 \
		"${args[@]}" --cache-repo "$registry/$prefix/cache" >"$work/$name.out" 2>&1 \
		|| { cat "$work/$name.out" >&2; exit 1; }
	t1=$(now_ns)
	grep -q "$((2 * roots)) built" "$work/$name.out" || { cat "$work/$name.out" >&2; echo "not all built" >&2; exit 1; }
	secs "$t0" "$t1"
}
one=() two=()
for round in $(seq 1 "$rounds"); do
	one+=("$(run "one$round" keg-node-1)")
	two+=("$(run "two$round" keg-node-1 keg-node-2)")
done
m1=$(printf '%s\n' "${one[@]}" | stats | cut -d' ' -f1)
m2=$(printf '%s\n' "${two[@]}" | stats | cut -d' ' -f1)
echo "result: builder pool, $((2 * roots)) nodes ($roots roots + $roots children, RUN sleep 10), --jobs 4 per builder, pushed by key, median of $rounds: one builder ${m1} s; two builders ${m2} s; ratio $(awk -v a="$m2" -v b="$m1" 'BEGIN {printf "%.2f", a / b}') (rounds: ${one[*]} / ${two[*]})"
