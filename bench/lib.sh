# Shared helpers for the bench/*.sh scripts (sourced, not run).
#
# Every script: `set -euo pipefail`, the release binary ($KEG, default target/release/keg,
# built if missing), fixtures generated in a temp dir that is deleted on exit (KEG_BENCH_KEEP=1
# keeps it), and one `result:` line per figure at the end.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KEG=${KEG:-$bench_root/target/release/keg}
if [ ! -x "$KEG" ]; then
	(cd "$bench_root" && cargo build --release --quiet)
fi
KEG=$(realpath "$KEG")

# A clean environment: no bashbrew settings leak in from the caller.
unset BASHBREW_LIBRARY BASHBREW_ARCH BASHBREW_NAMESPACE BASHBREW_CONSTRAINTS BASHBREW_CACHE \
	KEG_GIT_MIRRORS KEG_CACHE_REPO

# Fixed identities and times, so generated repositories are the same on every run.
export GIT_AUTHOR_NAME=keg-bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=keg-bench GIT_COMMITTER_EMAIL=bench@example.com
export GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null

# bench_tmp: a fresh temp dir in $work, removed on exit (plus any cleanup_hook the script set).
bench_tmp() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/keg-bench.XXXXXX")
	trap bench_cleanup EXIT
}

bench_cleanup() {
	local status=$?
	if declare -F cleanup_hook >/dev/null; then
		cleanup_hook || true
	fi
	if [ "${KEG_BENCH_KEEP:-0}" = 1 ]; then
		echo "kept fixtures in $work" >&2
	else
		rm -rf "$work"
	fi
	return "$status"
}

# now_ns: monotonic-enough wall clock in nanoseconds.
now_ns() { date +%s%N; }

# ms_since START_NS: milliseconds (3 decimals) since START_NS.
ms_since() { echo "$1 $(now_ns)" | awk '{printf "%.3f", ($2 - $1) / 1e6}'; }

# stats: reads numbers (one a line), prints "median min max n".
stats() {
	sort -g | awk '{v[NR] = $1} END {
		if (NR == 0) { print "nan nan nan 0"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.3f %.3f %.3f %d\n", m, v[1], v[NR], NR
	}'
}

# time_runs N CMD...: runs CMD N times (after one warm-up run) with stdout and stderr
# discarded; prints the wall time of each run in ms, one a line. A loop with date +%s%N (a
# few ms of fork/exec noise, fine for runs of 50 ms and more). A failing CMD fails the
# script with its stderr.
time_runs() {
	local n=$1 i start err
	shift
	err=$(mktemp)
	for ((i = -1; i < n; i++)); do
		start=$(now_ns)
		if ! "$@" >/dev/null 2>"$err"; then
			echo "failed: $*" >&2
			cat "$err" >&2
			rm -f "$err"
			return 1
		fi
		((i < 0)) || { ms_since "$start"; echo; }
	done
	rm -f "$err"
}

# measure_ms N CMD...: "median min max n" of time_runs. Use as `out=$(measure_ms ...)` so a
# failure stops the script.
measure_ms() {
	local times
	times=$(time_runs "$@")
	stats <<<"$times"
}

# hyperfine_ms N CMD: median and min in ms from hyperfine (-N: no shell), "median min".
hyperfine_ms() {
	local n=$1 csv
	shift
	csv=$(mktemp)
	hyperfine -N --warmup 5 --runs "$n" --export-csv "$csv" --style none "$*" >/dev/null 2>&1
	awk -F, 'NR == 2 {printf "%.3f %.3f\n", $4 * 1000, $7 * 1000}' "$csv"
	rm -f "$csv"
}

# peak_rss_kb CMD...: the peak resident set size of CMD in KiB (GNU time), output discarded.
peak_rss_kb() {
	local out
	out=$(mktemp)
	/usr/bin/time -f '%M' -o "$out" "$@" >/dev/null 2>&1
	tail -1 "$out"
	rm -f "$out"
}

# machine: the facts docs/performance.md records.
machine() {
	echo "machine: nproc=$(nproc), cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
		"mem=$(free -g | awk '/Mem:/ {print $2}') GiB, load=$(cut -d' ' -f1-3 /proc/loadavg)," \
		"keg=$("$KEG" --version | cut -d' ' -f2) ($(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null || echo '?'))"
}

# git_commit_all DIR [MESSAGE]: commits everything in DIR, prints the full commit id.
git_commit_all() {
	git -C "$1" add -A
	git -C "$1" commit -q -m "${2:-bench}" --allow-empty
	git -C "$1" rev-parse HEAD
}

# git_new DIR: an empty repository on branch main.
git_new() {
	mkdir -p "$1"
	git -C "$1" init -q -b main --template=
}

# result NAME VALUE UNIT [TARGET] [MET]: the line each script ends with, one per figure.
result() {
	echo "result: $1 = $2 $3${4:+ (target $4${5:+: $5})}"
}

# gen_repos ROOT REPOS ENTRIES [BASE]: REPOS git repositories ROOT/repos/r<i>, each with
# ENTRIES directories d0..d<ENTRIES-1> holding a Dockerfile, in one commit (its id in
# ROOT/repos/r<i>.commit). Directory j of repository i > 0 is built FROM the tag e<j> of
# repository bench-r<i/2> (a DAG of depth log2(REPOS)+1); repository 0 builds FROM BASE
# (default keg-test/busybox:latest). DOCKERFILE_EXTRA (default empty) ends every Dockerfile.
gen_repos() {
	local root=$1 repos=$2 entries=$3 base=${4:-keg-test/busybox:latest}
	local r e dir parent
	mkdir -p "$root/repos"
	for ((r = 0; r < repos; r++)); do
		dir=$root/repos/r$r
		git_new "$dir"
		for ((e = 0; e < entries; e++)); do
			mkdir -p "$dir/d$e"
			if ((r == 0)); then parent=$base; else parent=bench-r$((r / 2)):e$e; fi
			printf 'FROM %s\nRUN echo r%d-e%d > /id\n%s' "$parent" "$r" "$e" "${DOCKERFILE_EXTRA:-}" >"$dir/d$e/Dockerfile"
		done
		git_commit_all "$dir" >"$dir.commit"
	done
}

# gen_manifests ROOT LIBRARY REPOS ENTRIES [FIRST_REPO]: one manifest LIBRARY/bench-r<i> per
# repository of gen_repos, for repositories FIRST_REPO (default 0) .. REPOS-1, with entries
# for the first ENTRIES directories: tags e<j> and e<j>-alias, GitCommit, Directory d<j>.
gen_manifests() {
	local root=$1 lib=$2 repos=$3 entries=$4 first=${5:-0}
	local r e commit
	mkdir -p "$lib"
	for ((r = first; r < repos; r++)); do
		commit=$(cat "$root/repos/r$r.commit")
		{
			printf 'Maintainers: X <x@example.com> (@x)\nGitRepo: %s\nGitFetch: refs/heads/main\n' "$root/repos/r$r"
			for ((e = 0; e < entries; e++)); do
				printf '\nTags: e%d, e%d-alias\nGitCommit: %s\nDirectory: d%d\n' "$e" "$e" "$commit" "$e"
			done
		} >"$lib/bench-r$r"
	done
}

# gen_library ROOT REPOS ENTRIES [BASE]: gen_repos, then every entry in ROOT/library.
gen_library() {
	gen_repos "$@"
	gen_manifests "$1" "$1/library" "$2" "$3"
}
