#!/usr/bin/env bash
# Benchmark 2b, build context: `keg context repo:tag > /dev/null` for a 512 MiB directory
# (16 files of 16 MiB and 4,096 files of 64 KiB, random bytes) committed to a generated git
# repository and fetched into the cache. Reports throughput (tar bytes / wall time of the
# whole command) and peak RSS. Targets: >= 300 MB/s; peak RSS under 64 MiB + the largest
# file (16 MiB), so 80 MiB.
#
# Usage: bench/context.sh   (KEG_BENCH_RUNS=5; KEG_BENCH_BIG_MB=16 KEG_BENCH_BIG_FILES=16
#        KEG_BENCH_SMALL_KB=64 KEG_BENCH_SMALL_FILES=4096 to reshape the directory)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

runs=${KEG_BENCH_RUNS:-5}
big_mb=${KEG_BENCH_BIG_MB:-16}
big_files=${KEG_BENCH_BIG_FILES:-16}
small_kb=${KEG_BENCH_SMALL_KB:-64}
small_files=${KEG_BENCH_SMALL_FILES:-4096}
bench_tmp
machine

repo=$work/repos/big
git_new "$repo"
mkdir -p "$repo/ctx/big" "$repo/ctx/small"
start=$(now_ns)
for ((i = 0; i < big_files; i++)); do
	head -c "${big_mb}M" /dev/urandom >"$repo/ctx/big/f$i"
done
head -c "$((small_kb * small_files))K" /dev/urandom |
	(cd "$repo/ctx/small" && split -a 4 -d -b "${small_kb}K" - s)
printf 'FROM keg-test/busybox:latest\nCOPY . /ctx\n' >"$repo/ctx/Dockerfile"
content=$(du -sb "$repo/ctx" | cut -f1)
# Fast loose objects; the fetch into keg's cache writes its own pack.
git -C "$repo" -c core.looseCompression=1 add -A
git -C "$repo" commit -q -m big
commit=$(git -C "$repo" rev-parse HEAD)
echo "fixtures: $((content / 1048576)) MiB in $(find "$repo/ctx" -type f | wc -l) files, committed in $(ms_since "$start") ms"

mkdir -p "$work/library"
printf 'Maintainers: X <x@example.com> (@x)\nGitRepo: %s\n\nTags: big\nGitCommit: %s\nDirectory: ctx\n' \
	"$repo" "$commit" >"$work/library/bench-ctx"
lib=(--library "$work/library" --cache "$work/cache")
start=$(now_ns)
"$KEG" "${lib[@]}" fetch --all
echo "cold fetch of the 512 MiB commit: $(ms_since "$start") ms; cache pack: $(du -sm "$work/cache/git/objects" | cut -f1) MiB"
rm -rf "$repo" # the source repository is not needed any more (disk)

tar_bytes=$("$KEG" "${lib[@]}" context bench-ctx:big | wc -c)
out=$(measure_ms "$runs" "$KEG" "${lib[@]}" context bench-ctx:big)
read -r median min _ <<<"$out"
rss=$(peak_rss_kb "$KEG" "${lib[@]}" context bench-ctx:big)
largest=$((big_mb > small_kb / 1024 ? big_mb : 1))

mbs=$(awk -v b="$tar_bytes" -v ms="$median" 'BEGIN {printf "%.0f", b / 1e6 / (ms / 1000)}')
rss_mib=$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')
echo "method: date +%s%N loop, 1 warm-up + $runs runs, median (min); tar stream $tar_bytes bytes"
result "context of $((content / 1048576)) MiB" "$median ($min)" ms
result "context throughput" "$mbs" MB/s ">= 300 MB/s" "$(awk -v r="$mbs" 'BEGIN {print (r >= 300) ? "met" : "NOT met"}')"
result "context peak RSS" "$rss_mib" MiB "< $((64 + largest)) MiB (64 + largest file $largest MiB)" \
	"$(awk -v r="$rss_mib" -v b="$((64 + largest))" 'BEGIN {print (r < b) ? "met" : "NOT met"}')"
