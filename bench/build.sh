#!/usr/bin/env bash
# Builder benchmarks on the real engine (docs/performance.md):
#  1. makespan of a 12-node DAG (3 levels: 4 roots, 4 middles, 4 leaves; every build
#     `RUN sleep 2`) with --jobs 6, against the critical-path bound (the sum of the measured
#     build times along the longest chain, from the same run's summary) and --jobs 1;
#  2. a fully cached re-run of 50 entries: wall time and docker calls;
#  3. a 512 MiB context streamed into a real build: keg's peak RSS.
# Needs the rig (scripts/setup-docker). Uses the release binary; cleans up its images.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --quiet --release
keg="$root/target/release/keg"
base=keg-test/busybox:latest
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null

work=$(mktemp -d)
prefix="kbb$$"
cleanup() {
	docker image ls --format '{{.Repository}}:{{.Tag}}' | grep "$prefix" | xargs -r docker rmi -f >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
commit() { git -C "$1" add -A && git -C "$1" -c user.name=b -c user.email=b@example.com commit -qm bench && git -C "$1" rev-parse HEAD; }

# 1. Makespan.
mkdir -p "$work/dag/src" "$work/dag/lib"
git -C "$work/dag/src" init -q
for i in 1 2 3 4; do
	mkdir -p "$work/dag/src/r$i" "$work/dag/src/m$i" "$work/dag/src/l$i"
	printf 'FROM %s\nRUN sleep 2\n' "$base" >"$work/dag/src/r$i/Dockerfile"
	printf 'FROM %s-r%s:1\nRUN sleep 2\n' "$prefix" "$i" >"$work/dag/src/m$i/Dockerfile"
	printf 'FROM %s-m%s:1\nRUN sleep 2\n' "$prefix" "$i" >"$work/dag/src/l$i/Dockerfile"
done
c=$(commit "$work/dag/src")
for level in r m l; do
	for i in 1 2 3 4; do
		printf 'Maintainers: Bench (@bench)\nGitRepo: %s\nGitCommit: %s\nBuilder: buildkit\n\nTags: 1\nDirectory: %s%s\n' \
			"$work/dag/src" "$c" "$level" "$i" >"$work/dag/lib/$prefix-$level$i"
	done
done
dag() { # jobs run -> wall ms; the summary in $work/dag.out
	local t0 t1
	t0=$(date +%s%N)
	BASHBREW_LIBRARY="$work/dag/lib" BASHBREW_CACHE="$work/cache" "$keg" build --all --jobs "$1" \
		--cache-repo "$prefix/dag$2" --build-opt=--no-cache >"$work/dag.out"
	t1=$(date +%s%N)
	ms "$t0" "$t1"
}
wall6=$(dag 6 a)
# Critical path: the longest r -> m -> l chain of measured build times.
cp=$(awk -v p="$prefix-" '
	$2 == "built" { t = $3; sub(/s$/, "", t); split($1, a, ":"); name = a[1]; sub(p, "", name); time[name] = t * 1000 }
	END { best = 0; for (i = 1; i <= 4; i++) { s = time["r" i] + time["m" i] + time["l" i]; if (s > best) best = s }; printf "%d", best }
' "$work/dag.out")
wall1=$(dag 1 b)
echo "makespan, 12 nodes x RUN sleep 2, 3 levels: --jobs 6 ${wall6} ms; critical path ${cp} ms ($(awk "BEGIN {printf \"%.2f\", $wall6 / $cp}")x); --jobs 1 ${wall1} ms ($(awk "BEGIN {printf \"%.2f\", $wall6 / $wall1}")x)"

# 2. Fully cached re-run of 50 entries.
mkdir -p "$work/c50/src" "$work/c50/lib" "$work/bin"
git -C "$work/c50/src" init -q
for i in $(seq -w 1 50); do
	mkdir -p "$work/c50/src/e$i"
	printf 'FROM %s\nENV ENTRY=%s\n' "$base" "$i" >"$work/c50/src/e$i/Dockerfile"
done
c=$(commit "$work/c50/src")
{
	printf 'Maintainers: Bench (@bench)\nGitRepo: %s\nGitCommit: %s\nBuilder: buildkit\n' "$work/c50/src" "$c"
	for i in $(seq -w 1 50); do printf '\nTags: %s\nDirectory: e%s\n' "$i" "$i"; done
} >"$work/c50/lib/$prefix-c50"
export BASHBREW_LIBRARY="$work/c50/lib" BASHBREW_CACHE="$work/cache"
"$keg" build --all --cache-repo "$prefix/c50" >/dev/null
real_docker=$(command -v docker)
printf '#!/bin/sh\necho "$*" >>"%s"\nexec "%s" "$@"\n' "$work/calls" "$real_docker" >"$work/bin/docker"
chmod +x "$work/bin/docker"
times=()
for _ in $(seq 10); do
	: >"$work/calls"
	t0=$(date +%s%N)
	PATH="$work/bin:$PATH" "$keg" build --all --cache-repo "$prefix/c50" >"$work/c50.out"
	t1=$(date +%s%N)
	times+=("$(ms "$t0" "$t1")")
done
cached=$(grep -oE '[0-9]+ cached,' "$work/c50.out" | grep -oE '^[0-9]+')
echo "fully cached re-run, 50 entries, median of 10: $(printf '%s\n' "${times[@]}" | median) ms; $cached cached; docker calls: $(wc -l <"$work/calls") ($(cut -d' ' -f1-2 "$work/calls" | sort | uniq -c | tr -s ' ' | paste -sd, -))"
unset BASHBREW_LIBRARY BASHBREW_CACHE

# 3. A 512 MiB context: keg's peak RSS while streaming it into a build.
mkdir -p "$work/big/src/data" "$work/big/lib"
git -C "$work/big/src" init -q
for i in $(seq 1 8); do head -c $((64 << 20)) /dev/urandom >"$work/big/src/data/blob$i"; done
printf 'FROM %s\nRUN true\n' "$base" >"$work/big/src/Dockerfile"
c=$(commit "$work/big/src")
printf 'Maintainers: Bench (@bench)\nGitRepo: %s\nGitCommit: %s\nBuilder: buildkit\n\nTags: 1\n' "$work/big/src" "$c" >"$work/big/lib/$prefix-big"
BASHBREW_LIBRARY="$work/big/lib" BASHBREW_CACHE="$work/cache" "$keg" fetch --all
t0=$(date +%s%N)
BASHBREW_LIBRARY="$work/big/lib" BASHBREW_CACHE="$work/cache" /usr/bin/time -f '%M' -o "$work/rss" \
	"$keg" build --all --cache-repo "$prefix/big" >/dev/null
t1=$(date +%s%N)
echo "512 MiB context (8 x 64 MiB files) into a real build: keg peak RSS $(( $(cat "$work/rss") / 1024 )) MiB; build $(ms "$t0" "$t1") ms"
docker builder prune -af >/dev/null 2>&1 || true
