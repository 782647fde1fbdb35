#!/usr/bin/env bash
# Benchmark: `cat --format` with the CI matrix generator's template (bashbrew's
# scripts/github-actions/generate.sh: `.TagEntry`, `ternary`, `first`, `.Tags`,
# `.ArchDirectory`, `.ArchFile`, `.ArchBuilder`, `json`, and `.ArchDockerFroms`, which reads
# each entry's Dockerfile from the git cache) over every entry of the Official Images corpus,
# against plain `cat` of the same arguments, and against `cat --all`.
#
# The corpus has no Dockerfiles: scripts/conformance-build-order makes a library from it with
# one Dockerfile per entry in a git repository (the same one scripts/conformance checks
# `list --build-order` with). The git cache is warm for the timed runs (one `fetch --all`
# first); the cold figure (empty cache: fetch, then read every Dockerfile) is one run.
#
# Usage: bench/catformat.sh [CORPUS_DIR]
#   KEG_BENCH_RUNS=10   timed runs (median and min are reported)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

corpus=$(realpath "${1:-$bench_root/../shared/corpus/official-images}")
runs=${KEG_BENCH_RUNS:-10}
bench_tmp

machine
python3 "$bench_root/scripts/conformance-build-order" "$corpus" "$work/lib" >/dev/null
lib=(--library "$work/lib/library" --cache "$work/cache")
mapfile -t tags < <("$KEG" "${lib[@]}" list --all --uniq)
echo "library: $(ls "$work/lib/library" | wc -l) repositories, ${#tags[@]} entries (one Dockerfile each)"

# The CI matrix generator's template (scripts/github-actions/generate.sh), and the same
# without `.ArchDockerFroms` (the template engine alone, no git).
cat >"$work/generator.tmpl" <<'EOF2'
	{{- $e := .TagEntry -}}
	{{- $arch := $e.HasArchitecture arch | ternary arch ($e.Architectures | first) -}}
	{{- "{" -}}
		"name": {{- json ($e.Tags | first) -}},
		"tags": {{- json ($.Tags namespace false $e) -}},
		"directory": {{- json ($e.ArchDirectory $arch) -}},
		"file": {{- json ($e.ArchFile $arch) -}},
		"builder": {{- json ($e.ArchBuilder $arch) -}},
		"constraints": {{- json $e.Constraints -}},
		"froms": {{- json ($.ArchDockerFroms $arch $e) -}}
	{{- "}" -}}
EOF2
grep -v ArchDockerFroms "$work/generator.tmpl" | sed 's/"constraints": {{- json $e.Constraints -}},/"constraints": {{- json $e.Constraints -}}/' >"$work/nogit.tmpl"
template=$(cat "$work/generator.tmpl")
nogit=$(cat "$work/nogit.tmpl")

# Cold: an empty git cache (fetch the commit, then read every Dockerfile).
start=$(now_ns)
"$KEG" "${lib[@]}" cat --format "$template" "${tags[@]}" >"$work/cold.json"
cold=$(ms_since "$start")
# Sanity: one JSON object per tag (multi-line, as the generator's jq -c reads it).
objects=$(jq -s length "$work/cold.json")
[ "$objects" -eq "${#tags[@]}" ] || { echo "expected ${#tags[@]} JSON objects, got $objects" >&2; exit 1; }

read -r fmt_median fmt_min _ <<<"$(measure_ms "$runs" "$KEG" "${lib[@]}" cat --format "$template" "${tags[@]}")"
read -r cat_median cat_min _ <<<"$(measure_ms "$runs" "$KEG" "${lib[@]}" cat "${tags[@]}")"
read -r all_median all_min _ <<<"$(measure_ms "$runs" "$KEG" "${lib[@]}" cat --all)"
read -r nogit_median nogit_min _ <<<"$(measure_ms "$runs" "$KEG" "${lib[@]}" cat --format "$nogit" "${tags[@]}")"
# CPU time (user + system), less sensitive than wall time to other load on the machine.
cpu_ms() {
	local out i
	out=$(mktemp)
	for ((i = 0; i < runs; i++)); do
		/usr/bin/time -f '%U %S' -o "$out" "$@" >/dev/null 2>&1
		awk '{printf "%.0f\n", ($1 + $2) * 1000}' "$out"
	done | stats | cut -d' ' -f1
	rm -f "$out"
}
fmt_cpu=$(cpu_ms "$KEG" "${lib[@]}" cat --format "$template" "${tags[@]}")
nogit_cpu=$(cpu_ms "$KEG" "${lib[@]}" cat --format "$nogit" "${tags[@]}")
cat_cpu=$(cpu_ms "$KEG" "${lib[@]}" cat "${tags[@]}")
rss=$(for _ in 1 2 3; do peak_rss_kb "$KEG" "${lib[@]}" cat --format "$template" "${tags[@]}"; done | stats | cut -d' ' -f1)

echo "method: date +%s%N loop, 1 warm-up + $runs runs, warm git cache; one process, ${#tags[@]} repo:tag arguments"
result "cat --format (generator template, ${#tags[@]} tags) median" "$fmt_median" ms
result "cat --format (generator template) min" "$fmt_min" ms
result "cat --format (generator template without .ArchDockerFroms) median" "$nogit_median" ms
result "cat (same ${#tags[@]} tags) median" "$cat_median" ms
result "cat --all median" "$all_median" ms
result "ratio cat --format / cat (same arguments)" "$(awk -v a="$fmt_median" -v b="$cat_median" 'BEGIN {printf "%.2f", a / b}')" x
result "ratio cat --format without git / cat" "$(awk -v a="$nogit_median" -v b="$cat_median" 'BEGIN {printf "%.2f", a / b}')" x
result "CPU (user+sys) median: cat --format / without .ArchDockerFroms / cat" "$fmt_cpu / $nogit_cpu / $cat_cpu" ms
result "CPU ratio cat --format / cat" "$(awk -v a="$fmt_cpu" -v b="$cat_cpu" 'BEGIN {printf "%.2f", a / b}')" x
result "cat --format cold (empty git cache), one run" "$cold" ms
result "cat --format peak RSS (median of 3)" "$(awk -v k="${rss%.*}" 'BEGIN {printf "%.1f", k / 1024}')" MiB
