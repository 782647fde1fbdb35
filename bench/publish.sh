#!/usr/bin/env bash
# Publishing benchmark (docs/performance.md):
#  1. push + put-shared of 20 tags x 2 architectures when nothing changed: wall time, docker
#     calls (a logging wrapper first on PATH) and registry manifest requests (registry log);
#  2. the same small CPU-bound Dockerfile built natively (amd64) and emulated (arm64, qemu).
# Needs the rig with emulation: scripts/setup-docker --qemu. Uses the release binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --quiet --release
keg="$root/target/release/keg"
registry=127.0.0.1:5000
multi=$registry/keg-test/busybox:multi
registry_log=/var/lib/keg-rig/registry.log
runs=${RUNS:-5}

work=$(mktemp -d)
prefix="kbench$$"
cleanup() {
	docker image ls --format '{{.Repository}}:{{.Tag}}' | grep "$prefix" | xargs -r docker rmi -f >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# 20 entries with one tag each, both architectures, no RUN (no emulation needed).
mkdir -p "$work/src" "$work/lib"
git -C "$work/src" init -q
for i in $(seq -w 1 20); do
	mkdir -p "$work/src/e$i"
	printf 'FROM %s\nENV ENTRY=%s\n' "$multi" "$i" >"$work/src/e$i/Dockerfile"
done
git -C "$work/src" add -A
git -C "$work/src" -c user.name=b -c user.email=b@example.com commit -qm bench
commit=$(git -C "$work/src" rev-parse HEAD)
{
	printf 'Maintainers: Bench (@bench)\nGitRepo: %s\nGitCommit: %s\nArchitectures: amd64, arm64v8\nBuilder: buildkit\n' "$work/src" "$commit"
	for i in $(seq -w 1 20); do
		printf '\nTags: %s\nDirectory: e%s\n' "$i" "$i"
	done
} >"$work/lib/$prefix"

export BASHBREW_LIBRARY="$work/lib" BASHBREW_CACHE="$work/cache" KEG_CACHE_REPO="$prefix/cache"
export BASHBREW_ARCH_NAMESPACES="amd64=$registry/$prefix-amd64,arm64v8=$registry/$prefix-arm64v8"
"$keg" --arch all build --all >/dev/null
"$keg" --arch all push --all >/dev/null 2>&1
"$keg" put-shared --all --target-namespace "$registry/$prefix" >/dev/null 2>&1

# A docker wrapper that counts calls.
mkdir -p "$work/bin"
real_docker=$(command -v docker)
cat >"$work/bin/docker" <<EOF
#!/bin/sh
echo "\$*" >>"$work/docker-calls"
exec "$real_docker" "\$@"
EOF
chmod +x "$work/bin/docker"

push_times=() put_times=()
for _ in $(seq "$runs"); do
	: >"$work/docker-calls"
	lines_before=$(wc -l <"$registry_log")
	t0=$(date +%s%N)
	PATH="$work/bin:$PATH" "$keg" --arch all push --all >"$work/push.out" 2>"$work/push.err"
	t1=$(date +%s%N)
	PATH="$work/bin:$PATH" "$keg" put-shared --all --target-namespace "$registry/$prefix" >"$work/put.out" 2>"$work/put.err"
	t2=$(date +%s%N)
	push_times+=("$(ms "$t0" "$t1")")
	put_times+=("$(ms "$t1" "$t2")")
	manifest_gets=$(tail -n +"$((lines_before + 1))" "$registry_log" | grep -cE '"(GET|HEAD) /v2/.*/manifests/' || true)
done
pushed=$(grep -c '^Pushing' "$work/push.out" || true)
put=$(grep -c '^Putting' "$work/put.out" || true)
skipped_push=$(grep -c 'remote image matches local' "$work/push.err" || true)
skipped_put=$(grep -c 'remote digests up-to-date' "$work/put.err" || true)
calls=$(wc -l <"$work/docker-calls")
push_ms=$(printf '%s\n' "${push_times[@]}" | median)
put_ms=$(printf '%s\n' "${put_times[@]}" | median)
echo "nothing changed, 20 tags x 2 architectures, median of $runs:"
echo "  push:       ${push_ms} ms ($skipped_push tags skipped, $pushed pushed)"
echo "  put-shared: ${put_ms} ms ($skipped_put lists up to date, $put put)"
echo "  together:   $((push_ms + put_ms)) ms; docker calls (last run, both commands): $calls: $(cut -d' ' -f1-2 "$work/docker-calls" | sort | uniq -c | tr -s ' ' | paste -sd, -)"
echo "  registry manifest GETs (last run, both commands): $manifest_gets"

# 2. Native vs emulated build of the same CPU-bound Dockerfile (no cache: fresh keys).
mkdir -p "$work/cpu/src" "$work/cpu/lib"
git -C "$work/cpu/src" init -q
printf 'FROM %s\nRUN i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo $i > /count\n' "$multi" >"$work/cpu/src/Dockerfile"
git -C "$work/cpu/src" add -A
git -C "$work/cpu/src" -c user.name=b -c user.email=b@example.com commit -qm cpu
c=$(git -C "$work/cpu/src" rev-parse HEAD)
printf 'Maintainers: Bench (@bench)\nGitRepo: %s\nGitCommit: %s\nArchitectures: amd64, arm64v8\nBuilder: buildkit\n\nTags: 1\n' "$work/cpu/src" "$c" >"$work/cpu/lib/${prefix}cpu"
for arch in amd64 arm64v8; do
	times=()
	for n in $(seq 3); do
		t0=$(date +%s%N)
		BASHBREW_LIBRARY="$work/cpu/lib" KEG_CACHE_REPO="$prefix/cpu$n$arch" "$keg" --arch "$arch" build --all \
			--build-opt=--no-cache >/dev/null
		t1=$(date +%s%N)
		times+=("$(ms "$t0" "$t1")")
	done
	printf '%s\n' "${times[@]}" | median >"$work/$arch.ms"
done
native=$(cat "$work/amd64.ms")
emulated=$(cat "$work/arm64v8.ms")
echo "build of a 300,000-iteration shell loop, median of 3: native amd64 ${native} ms, emulated arm64 ${emulated} ms ($(awk "BEGIN {printf \"%.1f\", $emulated / $native}")x)"
