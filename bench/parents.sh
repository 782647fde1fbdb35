#!/usr/bin/env bash
# Parents pinned by key, on the real engine (docs/performance.md, "Parents pinned by key"):
#  1. two architectures at once: the makespan of a DAG built for amd64 and arm64v8 (qemu) in
#     one run (one queue), against the same DAG built for amd64, then for arm64v8;
#  2. the registry cache: a cold build with --cache-repo on a registry, then, after wiping
#     every local image of the run and the whole build cache, (a) a rebuild of the same
#     keys (pulled by key) and (b) a rebuild after a version bump of every entry (new keys,
#     layers imported from the mode=max cache refs), as ratios of the cold build.
# Needs the rig with qemu (scripts/setup-docker --qemu). Empties the engine's build cache.
# KEG_BENCH_ROUNDS (default 3) rounds of part 1; the median is reported.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_tmp
registry=${KEG_TEST_REGISTRY:-127.0.0.1:5000}
multi=$registry/keg-test/busybox:multi
base=keg-test/busybox:latest
prefix="kbp$$"
rounds=${KEG_BENCH_ROUNDS:-3}
cleanup_hook() {
	docker image ls --format '{{.Repository}}:{{.Tag}}' | grep "$prefix" | xargs -r docker rmi -f >/dev/null 2>&1 || true
}
commit() { git -C "$1" add -A && git -C "$1" commit -qm bench && git -C "$1" rev-parse HEAD; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b - a) / 1e9}'; }

# 1. A DAG of 6 entries per architecture: 2 roots, each with 2 children (`RUN sleep 3`).
mkdir -p "$work/arch/src" "$work/arch/lib"
git -C "$work/arch/src" init -q
for r in 1 2; do
	mkdir -p "$work/arch/src/r$r"
	printf 'FROM %s\nRUN sleep 3 && uname -m > /root.txt\n' "$multi" >"$work/arch/src/r$r/Dockerfile"
	for c in 1 2; do
		mkdir -p "$work/arch/src/c$r$c"
		printf 'FROM %s-r%s:1\nRUN sleep 3 && cat /root.txt > /child.txt\n' "$prefix" "$r" >"$work/arch/src/c$r$c/Dockerfile"
	done
done
c=$(commit "$work/arch/src")
for d in r1 r2 c11 c12 c21 c22; do
	printf 'Maintainers: Bench (@bench)\nGitRepo: %s\nGitCommit: %s\nBuilder: buildkit\nArchitectures: amd64, arm64v8\n\nTags: 1\nDirectory: %s\n' \
		"$work/arch/src" "$c" "$d" >"$work/arch/lib/$prefix-$d"
done
run_arch() { # ARCHES CACHE-REPO: one cold build
	BASHBREW_LIBRARY="$work/arch/lib" BASHBREW_CACHE="$work/cache" "$KEG" build --all --jobs 4 \
		--arch "$1" --cache-repo "$prefix/$2" --build-opt=--no-cache >"$work/arch.out" 2>&1 \
		|| { cat "$work/arch.out" >&2; exit 1; }
}
together=() apart=()
for round in $(seq 1 "$rounds"); do
	t0=$(now_ns)
	run_arch amd64,arm64v8 "both$round"
	t1=$(now_ns)
	run_arch amd64 "one$round"
	run_arch arm64v8 "one$round"
	t2=$(now_ns)
	together+=("$(secs "$t0" "$t1")")
	apart+=("$(secs "$t1" "$t2")")
done
m_together=$(printf '%s\n' "${together[@]}" | stats | cut -d' ' -f1)
m_apart=$(printf '%s\n' "${apart[@]}" | stats | cut -d' ' -f1)
echo "result: two architectures, 12 nodes (6 x amd64, 6 x arm64v8 under qemu), RUN sleep 3, --jobs 4, median of $rounds: one run ${m_together} s; amd64 then arm64v8 ${m_apart} s; ratio $(awk -v a="$m_together" -v b="$m_apart" 'BEGIN {printf "%.2f", a / b}') (rounds: ${together[*]} / ${apart[*]})"

# 2. The registry cache: 2 roots and 2 children, each `RUN sleep 15` (plus 4 MiB of layer)
# and a cheap last step that a version bump changes.
mkdir -p "$work/reg/src" "$work/reg/lib"
git -C "$work/reg/src" init -q
write_reg() { # ROOT-VERSION CHILD-VERSION
	for d in a b; do
		mkdir -p "$work/reg/src/$d" "$work/reg/src/${d}2"
		printf 'FROM %s\nRUN sleep 15 && head -c 4194304 /dev/urandom > /%s.bin\nRUN echo %s > /version\n' "$base" "$d" "$1" >"$work/reg/src/$d/Dockerfile"
		printf 'FROM %s-%s:1\nRUN sleep 15 && head -c 4194304 /dev/urandom > /%s2.bin\nRUN echo %s > /version2\n' "$prefix" "$d" "$d" "$2" >"$work/reg/src/${d}2/Dockerfile"
	done
	c=$(commit "$work/reg/src")
	for d in a b a2 b2; do
		printf 'Maintainers: Bench (@bench)\nGitRepo: %s\nGitCommit: %s\nBuilder: buildkit\n\nTags: 1\nDirectory: %s\n' \
			"$work/reg/src" "$c" "$d" >"$work/reg/lib/$prefix-$d"
	done
}
run_reg() {
	BASHBREW_LIBRARY="$work/reg/lib" BASHBREW_CACHE="$work/cache" "$KEG" build --all --jobs 4 \
		--cache-repo "$registry/$prefix/cache" >"$work/reg.out" 2>&1 || { cat "$work/reg.out" >&2; exit 1; }
}
totals() { grep -E '^[0-9]+ built, ' "$work/reg.out" | tail -n 1 | sed 's/ in [0-9.]*s$//'; }
wipe() {
	cleanup_hook
	docker builder prune -af >/dev/null
}
write_reg v1 v1
wipe
t0=$(now_ns)
run_reg
t1=$(now_ns)
cold=$(secs "$t0" "$t1")
wipe
t0=$(now_ns)
run_reg
t1=$(now_ns)
same=$(secs "$t0" "$t1")
same_totals=$(totals)
wipe
write_reg v1 v2
t0=$(now_ns)
run_reg
t1=$(now_ns)
bumped=$(secs "$t0" "$t1")
bumped_totals=$(totals)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "result: registry cache, 2 roots + 2 children x (RUN sleep 15 + 4 MiB), an empty engine and build cache each time: cold ${cold} s; same keys ${same} s ($same_totals; ratio $(ratio "$same" "$cold")); the children's version bumped ${bumped} s ($bumped_totals; their slow steps imported from the mode=max cache refs; ratio $(ratio "$bumped" "$cold"))"
