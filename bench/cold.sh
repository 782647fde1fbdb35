#!/usr/bin/env bash
# Cold start, fetching (docs/performance.md, "Cold start"): an empty cache, every commit of a
# library to fetch. On repositories this script generates: 3 with long histories (500
# commits, 30 directories, a 200 KiB incompressible blob every 10th commit: ~10 MiB of blobs
# each), entries at the tip and at an older commit.
#  1. local mirrors (`--git-mirror` to bare clones; keg hard-links their packs): `keg fetch
#     --all` into an empty cache vs
#     `git fetch` of the same commits from the same mirrors into empty repositories (full
#     history and --depth 1): time (median of 5) and keg's peak RSS;
#  2. the same over `git daemon` on 127.0.0.1 through a byte-counting proxy: keg shallow
#     (default) vs --unshallow, and git fetch --depth 1 vs full: bytes received, time;
#  3. 50 one-commit repositories over `git daemon` behind a proxy adding DELAY ms each way
#     (bench/delay_proxy.rs; no tc netem: the loopback is shared): --fetch-jobs 1 vs the
#     default;
#  4. packs piling up: 4 batches of 50 network fetches into one cache, `keg gc`, one more
#     batch; per-repository fetch time before and after, and the warm `fetch --all`.
#
# Usage: bench/cold.sh   (KEG_BENCH_DELAY_MS=25; KEG_BASELINE=/path/to/older/keg adds its
# figures to part 1)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

delay=${KEG_BENCH_DELAY_MS:-25}
runs=5
(cd "$bench_root" && cargo build --release --quiet --example delay-proxy)
proxy_bin=$bench_root/target/release/examples/delay-proxy
git_daemon_bin="$(git --exec-path)/git-daemon"
[ -x "$git_daemon_bin" ] || { echo "git daemon is not installed" >&2; exit 1; }

bench_tmp
pids=()
cleanup_hook() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
machine

# gen_history DIR NAME: a repository with 500 commits (see above), on branch main.
gen_history() {
	local dir=$1 name=$2 c d t
	git_new "$dir"
	{
		for ((c = 1; c <= 500; c++)); do
			d=$((c % 30))
			t=$((1700000000 + c * 3600))
			printf 'commit refs/heads/main\ncommitter keg-bench <bench@example.com> %d +0000\ndata <<EOM\n%s commit %d\nEOM\n' "$t" "$name" "$c"
			printf 'M 100644 inline d%02d/Dockerfile\ndata <<EOM\nFROM keg-test/busybox:latest\nRUN echo %s-%d-%d > /id\nEOM\n' "$d" "$name" "$d" "$c"
			printf 'M 100644 inline d%02d/notes.txt\ndata <<EOM\n' "$d"
			head -c 3000 /dev/urandom | base64
			printf 'EOM\n'
			if ((c % 10 == 0)); then
				printf 'M 100644 inline d%02d/blob.bin\ndata %d\n' "$d" $((200 << 10))
				head -c $((200 << 10)) /dev/urandom
				printf '\n'
			fi
		done
	} | git -C "$dir" fast-import --quiet
	git -C "$dir" reset -q --hard main 2>/dev/null || true
}

# median_of FILE: the median of the numbers in FILE.
median_of() { stats <"$1" | cut -d' ' -f1; }

start=$(now_ns)
names=(php wordpress drupal)
mkdir -p "$work/src" "$work/mirrors" "$work/lib"
for name in "${names[@]}"; do
	gen_history "$work/src/$name" "$name"
	git clone -q --mirror "$work/src/$name" "$work/mirrors/$name.git"
	git -C "$work/mirrors/$name.git" config uploadpack.allowAnySHA1InWant true
	tip=$(git -C "$work/src/$name" rev-parse main)
	old=$(git -C "$work/src/$name" rev-parse main~50)
	echo "$tip $old" >"$work/$name.commits"
	{
		printf 'Maintainers: Bench (@bench)\nGitRepo: https://git.example.com/%s.git\nGitFetch: refs/heads/main\n' "$name"
		for ((d = 0; d < 30; d++)); do
			printf '\nTags: d%02d\nGitCommit: %s\nDirectory: d%02d\n' "$d" "$tip" "$d"
		done
		for ((d = 0; d < 5; d++)); do
			printf '\nTags: old-d%02d\nGitCommit: %s\nDirectory: d%02d\n' "$d" "$old" "$d"
		done
	} >"$work/lib/$name"
done
echo "fixtures: 3 repositories x 500 commits, $(du -sm "$work/mirrors" | cut -f1) MiB of mirrors, in $(ms_since "$start") ms"

# 1. Local mirrors.
mirror_flag="https://git.example.com/=$work/mirrors/"
keg_local() { # CACHE [KEG]: one cold fetch --all through the local mirrors
	"${2:-$KEG}" --library "$work/lib" --cache "$1" --git-mirror "$mirror_flag" fetch --all
}
git_local() { # DEST DEPTH-ARGS...: git fetch of the same commits, each repository in turn
	local dest=$1 name
	shift
	for name in "${names[@]}"; do
		git init -q --bare "$dest/$name.git"
		# shellcheck disable=SC2046
		git -C "$dest/$name.git" fetch -q "$@" "$work/mirrors/$name.git" $(cat "$work/$name.commits")
	done
}
: >"$work/t.keg"
: >"$work/t.full"
: >"$work/t.depth1"
: >"$work/rss"
for ((i = 0; i < runs; i++)); do
	s=$(now_ns); keg_local "$work/c1-$i" >/dev/null; ms_since "$s" >>"$work/t.keg"; echo >>"$work/t.keg"
	/usr/bin/time -f '%M' -o "$work/rss1" "$KEG" --library "$work/lib" --cache "$work/c1r-$i" --git-mirror "$mirror_flag" fetch --all
	cat "$work/rss1" >>"$work/rss"
	s=$(now_ns); git_local "$work/g1-$i"; ms_since "$s" >>"$work/t.full"; echo >>"$work/t.full"
	s=$(now_ns); git_local "$work/g2-$i" --depth 1; ms_since "$s" >>"$work/t.depth1"; echo >>"$work/t.depth1"
	rm -rf "$work/c1-$i" "$work/c1r-$i" "$work/g1-$i" "$work/g2-$i"
done
keg_ms=$(median_of "$work/t.keg")
full_ms=$(median_of "$work/t.full")
depth1_ms=$(median_of "$work/t.depth1")
rss_kib=$(sort -n "$work/rss" | tail -1)
echo "method: median of $runs cold runs each (a fresh cache / fresh repositories every run); 70 entries, 6 commits"
result "local mirrors: keg fetch --all (cold)" "$keg_ms" ms
result "local mirrors: git fetch, full history, same commits" "$full_ms" ms
result "local mirrors: git fetch --depth 1, same commits" "$depth1_ms" ms
result "local mirrors: keg / git fetch (full)" "$(awk -v a="$keg_ms" -v b="$full_ms" 'BEGIN {printf "%.2f", a / b}')" x "<= 1.5"
result "local mirrors: keg / git fetch --depth 1" "$(awk -v a="$keg_ms" -v b="$depth1_ms" 'BEGIN {printf "%.2f", a / b}')" x
result "local mirrors: keg peak RSS (max of $runs)" "$((rss_kib / 1024))" MiB "< 32"
if [ -n "${KEG_BASELINE:-}" ]; then
	: >"$work/t.base"
	for ((i = 0; i < 3; i++)); do
		s=$(now_ns); keg_local "$work/cb-$i" "$KEG_BASELINE" >/dev/null; ms_since "$s" >>"$work/t.base"; echo >>"$work/t.base"
		rm -rf "$work/cb-$i"
	done
	/usr/bin/time -f '%M' -o "$work/rssb" "$KEG_BASELINE" --library "$work/lib" --cache "$work/cb" --git-mirror "$mirror_flag" fetch --all
	result "local mirrors: baseline keg ($KEG_BASELINE), median of 3" "$(median_of "$work/t.base")" ms
	result "local mirrors: baseline keg peak RSS" "$(($(cat "$work/rssb") / 1024))" MiB
fi

# start_daemon BASE: a git daemon serving BASE; sets daemon_port.
start_daemon() {
	daemon_port=$((20000 + RANDOM % 40000))
	while (exec 3<>/dev/tcp/127.0.0.1/"$daemon_port") 2>/dev/null; do daemon_port=$((20000 + RANDOM % 40000)); done
	"$git_daemon_bin" --reuseaddr --export-all --listen=127.0.0.1 --port="$daemon_port" --base-path="$1" "$1" 2>/dev/null &
	pids+=($!)
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/"$daemon_port") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "git daemon did not start" >&2
	return 1
}

# start_proxy TARGET_PORT DELAY_MS LOG: a delay-proxy in front of it; sets proxy_port.
start_proxy() {
	local out=$work/proxy.$RANDOM
	"$proxy_bin" --target "127.0.0.1:$1" --delay-ms "$2" --log "$3" >"$out" &
	pids+=($!)
	for _ in $(seq 100); do
		proxy_port=$(awk '/^port/ {print $2}' "$out")
		[ -n "$proxy_port" ] && return 0
		sleep 0.05
	done
	echo "delay-proxy did not start" >&2
	return 1
}

# received LOG: the bytes the client received, over every connection logged.
received() { awk '{s += $2} END {print s + 0}' "$1"; }
mib() { awk -v b="$1" 'BEGIN {printf "%.2f", b / 1048576}'; }

# 2. git daemon, full vs shallow.
start_daemon "$work/mirrors"
start_proxy "$daemon_port" 0 "$work/bytes.log"
net_flag="https://git.example.com/=git://127.0.0.1:$proxy_port/"
net_keg() { # NAME CACHE ARGS...
	local label=$1 cache=$2
	shift 2
	: >"$work/bytes.log"
	local s
	s=$(now_ns)
	"$KEG" --library "$work/lib" --cache "$cache" --git-mirror "$net_flag" "$@" fetch --all 2>/dev/null
	local ms
	ms=$(ms_since "$s")
	sleep 0.2 # the proxy logs a connection when both directions are closed
	result "git daemon: $label, time" "$ms" ms
	result "git daemon: $label, received" "$(mib "$(received "$work/bytes.log")")" MiB
}
net_git() { # LABEL ARGS...
	local label=$1 name s ms
	shift
	: >"$work/bytes.log"
	s=$(now_ns)
	for name in "${names[@]}"; do
		rm -rf "$work/gd/$name.git"
		git init -q --bare "$work/gd/$name.git"
		# shellcheck disable=SC2046
		git -C "$work/gd/$name.git" fetch -q "$@" "git://127.0.0.1:$proxy_port/$name.git" $(cat "$work/$name.commits")
	done
	ms=$(ms_since "$s")
	sleep 0.2
	result "git daemon: $label, time" "$ms" ms
	result "git daemon: $label, received" "$(mib "$(received "$work/bytes.log")")" MiB
}
net_keg "keg fetch --all, shallow (default)" "$work/c2s"
net_keg "keg fetch --all, --unshallow" "$work/c2f" --unshallow
net_git "git fetch --depth 1" --depth 1
net_git "git fetch, full history"
result "git daemon: keg shallow cache packs" "$(mib "$(du -sb "$work/c2s/git/objects/pack" | cut -f1)")" MiB
result "git daemon: keg full cache packs" "$(mib "$(du -sb "$work/c2f/git/objects/pack" | cut -f1)")" MiB

# 3. 50 repositories behind a delay.
gen_repos "$work/fifty" 50 1
for ((r = 0; r < 50; r++)); do git -C "$work/fifty/repos/r$r" config uploadpack.allowAnySHA1InWant true; done
gen_manifests "$work/fifty" "$work/fifty/lib" 50 1
start_daemon "$work/fifty/repos"
start_proxy "$daemon_port" "$delay" "$work/bytes50.log"
# The manifests name $work/fifty/repos/r<i>: a mirror prefix sends them to the proxy.
fifty_flag="$work/fifty/repos/=git://127.0.0.1:$proxy_port/"
fifty() { # CACHE ARGS...
	local cache=$1
	shift
	"$KEG" --library "$work/fifty/lib" --cache "$cache" --git-mirror "$fifty_flag" "$@" fetch --all 2>/dev/null
}
s=$(now_ns); fifty "$work/c3-seq" --fetch-jobs 1; seq_ms=$(ms_since "$s")
s=$(now_ns); fifty "$work/c3-par"; par_ms=$(ms_since "$s")
echo "method: 50 repositories, one commit each, over git daemon behind delay-proxy --delay-ms $delay (one way; ${delay}x2 ms round trips)"
result "50 repositories, --fetch-jobs 1 (one after another)" "$seq_ms" ms
result "50 repositories, default --fetch-jobs 16" "$par_ms" ms
result "50 repositories, parallel / sequential" "$(awk -v a="$par_ms" -v b="$seq_ms" 'BEGIN {printf "%.2f", a / b}')" x

# 4. Packs piling up, then gc.
gen_repos "$work/piles" 250 1
for ((r = 0; r < 250; r++)); do git -C "$work/piles/repos/r$r" config uploadpack.allowAnySHA1InWant true; done
start_daemon "$work/piles/repos"
piles_flag="$work/piles/repos/=git://127.0.0.1:$daemon_port/"
batch() { # FROM TO -> ms per repository
	gen_manifests "$work/piles" "$work/piles/lib-$1" "$2" 1 "$1"
	local s ms
	s=$(now_ns)
	"$KEG" --library "$work/piles/lib-$1" --cache "$work/c4" --git-mirror "$piles_flag" fetch --all 2>/dev/null
	ms=$(ms_since "$s")
	awk -v m="$ms" -v n=$(($2 - $1)) 'BEGIN {printf "%.1f", m / n}'
}
packs() { find "$work/c4/git/objects/pack" -name '*.pack' | wc -l; }
for from in 0 50 100 150; do
	per=$(batch "$from" $((from + 50)))
	echo "  repositories $from..$((from + 49)): $per ms each; the cache now has $(packs) packs"
	last=$per
done
gen_manifests "$work/piles" "$work/piles/lib-all" 200 1
warm() { measure_ms 5 "$KEG" --library "$work/piles/lib-all" --cache "$work/c4" --git-mirror "$piles_flag" fetch --all | cut -d' ' -f1; }
warm_before=$(warm)
s=$(now_ns)
# No engine for gc here: the git part only (the engine is shared).
DOCKER_HOST=unix:///nonexistent/docker.sock \
	"$KEG" --library "$work/piles/lib-all" --cache "$work/c4" --git-mirror "$piles_flag" gc >"$work/gc.out" 2>/dev/null
gc_ms=$(ms_since "$s")
grep '^git: kept' "$work/gc.out" | sed 's/^/  /' || true
warm_after=$(warm)
after=$(batch 200 250)
echo "  repositories 200..249 after gc: $after ms each; the cache now has $(packs) packs"
result "network fetch with 150-200 packs in the cache" "$last" "ms/repository"
result "network fetch after keg gc (1-51 packs)" "$after" "ms/repository"
result "keg gc of 200 packs" "$gc_ms" ms
result "fetch --all, everything cached, 200 pins: before gc (median of 5)" "$warm_before" ms
result "fetch --all, everything cached, 200 pins: after gc (median of 5)" "$warm_after" ms
