#!/usr/bin/env bash
# Cold start, first builds (docs/performance.md, "Cold start"): 20 trivial `Builder: classic`
# entries (FROM keg-test/busybox:latest, one RUN), nothing built yet, on the rig's engine.
#  1. the bashbrew way: one plain `docker build` after another (git archive of the entry's
#     directory piped into `DOCKER_BUILDKIT=0 docker build -t <cache tag> -t <tag> -`), and
#     where its time goes per engine call (timestamps on its output lines);
#  2. the same plain build with keg's three OCI labels (--label): what they cost; the
#     engine's image listing, all images vs filtered to what a plan names;
#  3. `keg build --all` with --jobs 1, 2, 4, 8 and the default, and with --classic-labels;
#     each against the sequential loop of the same run: the ratio.
# Every measurement gets its own commit (a new RUN line), so nothing is cached. Needs the rig
# (scripts/setup-docker); removes every image it made.
#
# Usage: bench/first-builds.sh   (KEG_BENCH_ENTRIES=20)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

entries=${KEG_BENCH_ENTRIES:-20}
base=keg-test/busybox:latest
prefix="kfb$$"
bench_tmp
cleanup_hook() {
	docker image ls --format '{{.Repository}}:{{.Tag}}' | grep "$prefix" | xargs -r docker rmi -f >/dev/null 2>&1 || true
}
# drop_images: removes this script's images, untimed, between measurements: the containerd
# image store gets slower as images pile up (a first version of this script, keeping all
# 300 images to the end, saw the same sequential loop go from 42 s to 141 s).
drop_images() { cleanup_hook; }
docker image inspect "$base" >/dev/null
machine
echo "engine: docker $(docker version --format '{{.Server.Version}}'), $(docker info --format '{{.Driver}}') ($(docker info --format '{{range .DriverStatus}}{{index . 1}} {{end}}'))"

src=$work/src
git_new "$src"
round=0
# new_round: every Dockerfile gets a new RUN line; sets $round and $commit (no subshell).
new_round() {
	round=$((round + 1))
	local i
	for ((i = 1; i <= entries; i++)); do
		mkdir -p "$src/e$i"
		printf 'FROM %s\nRUN echo %s-%d-%d > /id\n' "$base" "$prefix" "$round" "$i" >"$src/e$i/Dockerfile"
	done
	commit=$(git_commit_all "$src" "round $round")
}
# manifest COMMIT: one repository, $entries classic entries.
manifest() {
	mkdir -p "$work/lib"
	{
		printf 'Maintainers: Bench (@bench)\nGitRepo: %s\nGitFetch: refs/heads/main\nGitCommit: %s\n' "$src" "$1"
		for ((i = 1; i <= entries; i++)); do printf '\nTags: e%d\nDirectory: e%d\n' "$i" "$i"; done
	} >"$work/lib/$prefix-lib"
}

# plain_loop COMMIT LABEL_ARGS...: the bashbrew way; wall ms. With KEG_BENCH_TRACE set,
# appends "<epoch seconds> <line>" for every output line (and a BEGIN line before each
# build) to $work/trace ($EPOCHREALTIME: no fork per line).
plain_loop() {
	local commit=$1 i start
	shift
	start=$(now_ns)
	for ((i = 1; i <= entries; i++)); do
		[ -z "${KEG_BENCH_TRACE:-}" ] || echo "$EPOCHREALTIME BEGIN" >>"$work/trace"
		git -C "$src" archive --format=tar "$commit:e$i" |
			DOCKER_BUILDKIT=0 docker build --rm --force-rm -f Dockerfile \
				-t "$prefix/cache:$round-$i" -t "$prefix-lib:e$i" "$@" - 2>&1 |
			if [ -n "${KEG_BENCH_TRACE:-}" ]; then
				while IFS= read -r line; do echo "$EPOCHREALTIME $line"; done >>"$work/trace"
			else
				cat >/dev/null
			fi
	done
	ms_since "$start"
}

keg_build() { # COMMIT ARGS...: keg build --all, cold; wall ms
	local commit=$1 start
	shift
	manifest "$commit"
	start=$(now_ns)
	"$KEG" --library "$work/lib" --cache "$work/cache" build --all --cache-repo "$prefix/kc$round" "$@" >"$work/keg.out" 2>&1 ||
		{ cat "$work/keg.out" >&2; return 1; }
	ms_since "$start"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
median_of() { stats <"$1" | cut -d' ' -f1; }

# Warm up the engine (first container start after idle is slower).
new_round
plain_loop "$commit" >/dev/null
drop_images

# 1. Where a plain classic build's time goes.
new_round
: >"$work/trace"
seq_ms=$(KEG_BENCH_TRACE=1 plain_loop "$commit")
awk -v n="$entries" '
	function lap(i) { sum[i] += ($1 - p) * 1000; p = $1 }
	$2 == "BEGIN" { p = $1; begin = $1 }
	/ Step 1\/2 : FROM/ { lap(1) }
	/ Step 2\/2 : RUN/ { lap(2) }
	/ ---> Running in/ { lap(3) }
	/ Removed intermediate container/ { lap(4) }
	/ Successfully built/ { lap(5) }
	/ Successfully tagged/ { lap(6) }
	END {
		printf "  per classic build, mean of %d (timestamps of docker build output lines):\n", n
		printf "    client start, context upload, until \"Step 1/2 : FROM\": %6.0f ms\n", sum[1] / n
		printf "    FROM (look up the base image):                    %6.0f ms\n", sum[2] / n
		printf "    RUN: until \"Running in\" (create the container):  %6.0f ms\n", sum[3] / n
		printf "    RUN: start, run, commit, remove the container:    %6.0f ms\n", sum[4] / n
		printf "    until \"Successfully built\":                      %6.0f ms\n", sum[5] / n
		printf "    two tags (cache tag, image tag):                  %6.0f ms\n", sum[6] / n
	}' "$work/trace"
drop_images
result "sequential docker build loop ($entries classic builds, the bashbrew way)" "$seq_ms" ms
result "sequential docker build, per build" "$(awk -v m="$seq_ms" -v n="$entries" 'BEGIN {printf "%.0f", m / n}')" ms

# 2. The same with keg's three labels.
new_round
labels_ms=$(plain_loop "$commit" --label org.opencontainers.image.source=x --label org.opencontainers.image.revision=y --label org.opencontainers.image.created=z)
drop_images
result "sequential docker build with 3 --label, per build" "$(awk -v m="$labels_ms" -v n="$entries" 'BEGIN {printf "%.0f", m / n}')" ms
result "3 --label flags cost per classic build" "$(awk -v a="$labels_ms" -v b="$seq_ms" -v n="$entries" 'BEGIN {printf "%.0f", (a - b) / n}')" ms

# 2b. The engine call keg makes before any build: the image listing, all vs filtered.
n_images=$(docker image ls -q | wc -l)
all_ms=$(measure_ms 3 docker image ls --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}' | cut -d' ' -f1)
filtered_ms=$(measure_ms 3 docker image ls --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}' \
	--filter "reference=$prefix/kc1" --filter "reference=$prefix-lib" --filter reference=keg-test/busybox | cut -d' ' -f1)
result "docker image ls, all $n_images images (median of 3)" "$all_ms" ms
result "docker image ls, filtered to what a plan names (median of 3)" "$filtered_ms" ms

# 3. keg, several job counts, each against a sequential loop of its own moment; the default
#    three times (interleaved with its loops), for a median ratio.
: >"$work/ratios"
for jobs in 1 2 4 8 labels default default default; do
	new_round
	case $jobs in
	default) keg_ms=$(keg_build "$commit") ;;
	labels) keg_ms=$(keg_build "$commit" --jobs 4 --classic-labels) ;;
	*) keg_ms=$(keg_build "$commit" --jobs "$jobs") ;;
	esac
	built=$(grep -oE '^[0-9]+ built, ' "$work/keg.out" | grep -oE '^[0-9]+' || echo '?')
	drop_images
	new_round
	loop_ms=$(plain_loop "$commit")
	drop_images
	case $jobs in
	default) label="keg build, default jobs (2 x CPUs, at least 4: $(($(nproc) * 2 > 4 ? $(nproc) * 2 : 4)))" ;;
	labels) label="keg build --jobs 4 --classic-labels" ;;
	*) label="keg build --jobs $jobs" ;;
	esac
	if [ "$jobs" = default ]; then echo "$(ratio "$keg_ms" "$loop_ms")" >>"$work/ratios"; fi
	result "$label ($built built)" "$keg_ms" ms
	result "$label / sequential docker build ($loop_ms ms)" "$(ratio "$keg_ms" "$loop_ms")" x "<= 0.5"
done
result "keg build, default jobs / sequential docker build, median of 3" "$(median_of "$work/ratios")" x "<= 0.5"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
