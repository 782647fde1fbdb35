#!/usr/bin/env bash
# Benchmark 4a, builder makespan on the real engine: a 12-node DAG of depth 3 (3 levels of 4
# nodes; a node of levels 2 and 3 is FROM one node of the level above and COPY --from
# another), every build `RUN sleep 2`. `keg build --jobs 6` is compared with
#  - the critical-path bound: the largest sum of measured build times (keg's `built ... in
#    N.Ns` lines) along a parent -> child chain, and
#  - `keg build --jobs 1` of the same DAG (fresh content, so nothing is cached).
# Targets: jobs-6 wall time within 1.3x the critical path, and at most 0.4x the jobs-1 wall
# time. Needs the rig (scripts/setup-docker); every image it makes is removed afterwards,
# and dangling build cache is pruned.
#
# Usage: bench/build-dag.sh   (KEG_BENCH_SLEEP=2 seconds per build)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

sleep_s=${KEG_BENCH_SLEEP:-2}
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

# gen_dag NAME: the DAG as one repository (12 directories) and one manifest per level, with
# content unique to NAME so no layer or keg cache is shared between runs.
gen_dag() {
	local name=$1 root=$work/$1 level j dir parent other commit
	git_new "$root/repo"
	for level in 1 2 3; do
		for j in 0 1 2 3; do
			dir=$root/repo/l$level-n$j
			mkdir -p "$dir"
			if ((level == 1)); then
				printf 'FROM keg-test/busybox:latest\n' >"$dir/Dockerfile"
			else
				parent=$prefix-$name-l$((level - 1)):n$j
				other=$prefix-$name-l$((level - 1)):n$(((j + 1) % 4))
				printf 'FROM %s\nCOPY --from=%s /id /parent-id\n' "$parent" "$other" >"$dir/Dockerfile"
			fi
			printf 'RUN sleep %s && echo %s-l%d-n%d > /id\n' "$sleep_s" "$name" "$level" "$j" >>"$dir/Dockerfile"
		done
	done
	commit=$(git_commit_all "$root/repo")
	mkdir -p "$root/library"
	for level in 1 2 3; do
		{
			printf 'Maintainers: X <x@example.com> (@x)\nGitRepo: %s\nGitCommit: %s\n' "$root/repo" "$commit"
			for j in 0 1 2 3; do printf '\nTags: n%d\nDirectory: l%d-n%d\n' "$j" "$level" "$j"; done
		} >"$root/library/$prefix-$name-l$level"
	done
}

# run_build NAME JOBS: builds the DAG NAME; prints its wall time in ms; keeps keg's output.
run_build() {
	local name=$1 jobs=$2 start
	local lib=(--library "$work/$name/library" --cache "$work/cache")
	"$KEG" "${lib[@]}" fetch --all >/dev/null
	start=$(now_ns)
	"$KEG" "${lib[@]}" build --all --jobs "$jobs" --cache-repo "$prefix-cache" >"$work/$name.out" 2>&1 || {
		cat "$work/$name.out" >&2
		return 1
	}
	ms_since "$start"
}

# critical_path NAME: the longest chain of measured build times (s) in run NAME.
critical_path() {
	local name=$1 level j id
	declare -A t best
	while read -r id secs; do t[$id]=$secs; done < <(
		sed -nE 's/.*built +([^ ]+) in ([0-9.]+)s.*/\1 \2/p' "$work/$name.out"
	)
	for level in 1 2 3; do
		for j in 0 1 2 3; do
			id=$prefix-$name-l$level:n$j@amd64
			[ -n "${t[$id]:-}" ] || {
				echo "no build time for $id" >&2
				return 1
			}
			if ((level == 1)); then
				best[$level.$j]=${t[$id]}
			else
				best[$level.$j]=$(awk -v me="${t[$id]}" -v a="${best[$((level - 1)).$j]}" \
					-v b="${best[$((level - 1)).$(((j + 1) % 4))]}" 'BEGIN {print me + (a > b ? a : b)}')
			fi
		done
	done
	printf '%s\n' "${best[3.0]}" "${best[3.1]}" "${best[3.2]}" "${best[3.3]}" | sort -g | tail -1
}

gen_dag p
gen_dag s
par_ms=$(run_build p 6)
cp_s=$(critical_path p)
ser_ms=$(run_build s 1)
sum_s=$(sed -nE 's/.*built +[^ ]+ in ([0-9.]+)s.*/\1/p' "$work/p.out" | awk '{s += $1} END {print s}')
echo "jobs 6: $(grep -cE '^[0-9:]+ built ' "$work/p.out") nodes built in $par_ms ms (sum of build times ${sum_s} s); jobs 1: $ser_ms ms"
grep -E '^[0-9:]+ (start|built)' "$work/p.out" | sed 's/^/  /'

vs_cp=$(awk -v p="$par_ms" -v c="$cp_s" 'BEGIN {printf "%.2f", p / 1000 / c}')
vs_ser=$(awk -v p="$par_ms" -v s="$ser_ms" 'BEGIN {printf "%.2f", p / s}')
echo "method: one run each (wall time of keg build, plan and engine queries included)"
result "makespan, --jobs 6" "$(awk -v m="$par_ms" 'BEGIN {printf "%.2f", m / 1000}')" s
result "critical path (sum of build times along the longest chain)" "$cp_s" s
result "makespan / critical path" "$vs_cp" x "<= 1.3x" "$(awk -v r="$vs_cp" 'BEGIN {print (r <= 1.3) ? "met" : "NOT met"}')"
result "makespan, --jobs 1" "$(awk -v m="$ser_ms" 'BEGIN {printf "%.2f", m / 1000}')" s
result "makespan jobs 6 / jobs 1" "$vs_ser" x "<= 0.4x" "$(awk -v r="$vs_ser" 'BEGIN {print (r <= 0.4) ? "met" : "NOT met"}')"
