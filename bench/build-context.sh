#!/usr/bin/env bash
# Benchmark 4c, a 512 MiB build context streamed into a real build: `keg build` of one entry
# whose directory holds 16 files of 16 MiB and 4,096 files of 64 KiB (random bytes); keg
# streams the tar from its git cache into `docker build -`'s stdin. Reports keg's own peak
# RSS (VmHWM of the keg process, sampled every 20 ms until it exits), the peak of keg and its
# children (GNU time: includes the docker client), and the wall time. Target: keg's peak RSS
# under 64 MiB. Removes its images and prunes dangling build cache.
#
# Usage: bench/build-context.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"

docker version --format '{{.Server.Version}}' >/dev/null || {
	echo "no Docker engine: run scripts/setup-docker" >&2
	exit 1
}
bench_tmp
prefix=kegbench-$$-$(date +%s)
cleanup_hook() {
	docker image ls --format '{{.Repository}}:{{.Tag}}' | grep "^$prefix" | xargs -r docker image rm -f >/dev/null
	docker builder prune -f >/dev/null
}
machine

repo=$work/repos/big
git_new "$repo"
mkdir -p "$repo/ctx/big" "$repo/ctx/small"
for ((i = 0; i < 16; i++)); do head -c 16M /dev/urandom >"$repo/ctx/big/f$i"; done
head -c $((64 * 4096))K /dev/urandom | (cd "$repo/ctx/small" && split -a 4 -d -b 64K - s)
printf 'FROM keg-test/busybox:latest\nRUN echo %s > /id\n' "$prefix" >"$repo/ctx/Dockerfile"
git -C "$repo" -c core.looseCompression=1 add -A
git -C "$repo" commit -q -m big
mkdir -p "$work/library"
printf 'Maintainers: X <x@example.com> (@x)\nGitRepo: %s\n\nTags: big\nGitCommit: %s\nDirectory: ctx\n' \
	"$repo" "$(git -C "$repo" rev-parse HEAD)" >"$work/library/$prefix"
lib=(--library "$work/library" --cache "$work/cache")
"$KEG" "${lib[@]}" fetch --all
rm -rf "$repo"
tar_bytes=$("$KEG" "${lib[@]}" context "$prefix:big" | wc -c)

start=$(now_ns)
/usr/bin/time -f '%M' -o "$work/time.out" "$KEG" "${lib[@]}" build --all --cache-repo "$prefix-cache" \
	>"$work/build.out" 2>&1 &
timer=$!
keg_pid=
peak=0
while kill -0 "$timer" 2>/dev/null; do
	[ -n "$keg_pid" ] || keg_pid=$(pgrep -P "$timer" -x keg || true)
	if [ -n "$keg_pid" ]; then
		hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$keg_pid/status" 2>/dev/null || true)
		[ -z "$hwm" ] || ((hwm <= peak)) || peak=$hwm
	fi
	sleep 0.02
done
wait "$timer" || {
	cat "$work/build.out" >&2
	exit 1
}
ms=$(ms_since "$start")
grep -E 'built|FAILED' "$work/build.out" | tail -2 | sed 's/^/  /'
all=$(cat "$work/time.out")

echo "method: one build; VmHWM of the keg process sampled every 20 ms; tar stream $tar_bytes bytes"
result "build with a 512 MiB context, wall" "$(awk -v m="$ms" 'BEGIN {printf "%.2f", m / 1000}')" s
result "streaming rate into docker build" "$(awk -v b="$tar_bytes" -v m="$ms" 'BEGIN {printf "%.0f", b / 1e6 / (m / 1000)}')" MB/s
result "keg peak RSS (VmHWM)" "$(awk -v k="$peak" 'BEGIN {printf "%.1f", k / 1024}')" MiB "< 64 MiB" \
	"$(awk -v k="$peak" 'BEGIN {print (k > 0 && k < 65536) ? "met" : "NOT met"}')"
result "peak RSS of keg and its children (GNU time)" "$(awk -v k="$all" 'BEGIN {printf "%.1f", k / 1024}')" MiB
