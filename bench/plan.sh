#!/usr/bin/env bash
# Planner and sources benchmark (docs/performance.md): generated libraries of 200, 2,000 and
# 20,000 entries over 200 git repositories (each entry its own directory and Dockerfile; one
# in three is built on an entry of an earlier repository), with a warm git cache:
#  - `keg from --all`: Dockerfile reads + scans per second;
#  - `keg plan --all --json`: wall time and peak RSS.
# No Docker needed (DOCKER_HOST points nowhere). Uses the release binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --quiet --release
keg="$root/target/release/keg"
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
export DOCKER_HOST=unix:///nonexistent/docker.sock
sizes=${SIZES:-"200 2000 20000"}
repos=200

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

generate() { # entries -> $work/<entries>/{src,lib}
	python3 - "$work/$1" "$1" "$repos" <<'EOF'
import os, subprocess, sys
out, entries, repos = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = entries // repos
os.makedirs(f"{out}/lib")
env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com",
           GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.com",
           GIT_AUTHOR_DATE="1700000000 +0000", GIT_COMMITTER_DATE="1700000000 +0000")
for r in range(repos):
    src = f"{out}/src/r{r}"
    os.makedirs(src)
    for e in range(per):
        os.makedirs(f"{src}/d{e}")
        parent = f"gen{r - 1}:t{e}" if r > 0 and e % 3 == 0 else "keg-test/busybox:latest"
        with open(f"{src}/d{e}/Dockerfile", "w") as f:
            f.write(f"FROM {parent}\nRUN echo {r}-{e} > /id\n")
    subprocess.run(["git", "init", "-q", src], check=True)
    subprocess.run(["git", "-C", src, "add", "-A"], check=True)
    subprocess.run(["git", "-C", src, "commit", "-qm", "gen"], check=True, env=env)
    commit = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    with open(f"{out}/lib/gen{r}", "w") as f:
        f.write(f"Maintainers: Bench (@bench)\nGitRepo: {src}\nGitCommit: {commit}\n")
        for e in range(per):
            f.write(f"\nTags: t{e}\nDirectory: d{e}\n")
EOF
}

printf '%-8s %-10s %-14s %-12s %-10s\n' entries fetch from-rate plan-time plan-rss
for n in $sizes; do
	generate "$n"
	export BASHBREW_LIBRARY="$work/$n/lib" BASHBREW_CACHE="$work/$n/cache"
	t0=$(date +%s%N)
	"$keg" fetch --all
	t1=$(date +%s%N)
	fetch_ms=$(( (t1 - t0) / 1000000 ))
	"$keg" from --all >/dev/null # warm
	t0=$(date +%s%N)
	"$keg" from --all >/dev/null
	t1=$(date +%s%N)
	from_ms=$(( (t1 - t0) / 1000000 ))
	rate=$(awk "BEGIN {printf \"%d\", $n / ($from_ms / 1000)}")
	/usr/bin/time -f '%e %M' -o "$work/time" "$keg" plan --all --json >"$work/plan.json"
	read -r secs kib <"$work/time"
	nodes=$(python3 -c "import json,sys; print(len(json.load(open('$work/plan.json'))['nodes']))")
	[ "$nodes" = "$n" ] || { echo "expected $n nodes, got $nodes" >&2; exit 1; }
	printf '%-8s %-10s %-14s %-12s %-10s\n' "$n" "${fetch_ms}ms" "${rate}/s" "${secs}s" "$((kib / 1024))MiB"
	rm -rf "$work/$n"
done
