#!/usr/bin/env bash
# In the style of official-images' naughty-commits.sh: every entry's GitCommit, for every
# architecture, must be in its GitFetch ref. `.ArchDockerFroms` makes bashbrew fetch the
# commits; then plain git works in bashbrew's cache (`gitCache`).
set -Eeuo pipefail

_git() {
	git -C "$cache" "$@"
}

if [ "$#" -eq 0 ]; then
	set -- '--all'
fi

cache="$(bashbrew cat --format '{{ gitCache }}' "$1")"

imgs="$(bashbrew list --repos "$@" | sort -u)"
for img in $imgs; do
	commits="$(
		bashbrew cat --format '
			{{- range $e := .Entries -}}
				{{- range $a := .Architectures -}}
					{{- /* force `git fetch` */ -}}
					{{- $froms := $.ArchDockerFroms $a $e -}}
					{
						{{- json "GitRepo" }}:{{ json ($e.ArchGitRepo $a) -}},
						{{- json "GitFetch" }}:{{ json ($e.ArchGitFetch $a) -}},
						{{- json "GitCommit" }}:{{ json ($e.ArchGitCommit $a) -}}
					}
					{{- "\n" -}}
				{{- end -}}
			{{- end -}}
		' "$img" | jq -s 'unique'
	)"

	declare -A naughtyCommits=()
	length="$(jq -r 'length' <<<"$commits")"
	for (( i = 0; i < length; i++ )); do
		topCommit="$(jq -r ".[$i].GitCommit" <<<"$commits")"
		gitRepo="$(jq -r ".[$i].GitRepo" <<<"$commits")"
		gitFetch="$(jq -r ".[$i].GitFetch" <<<"$commits")"

		if ! _git fetch --quiet "$gitRepo" "$gitFetch:" ; then
			naughtyCommits[$topCommit]="unable to to fetch specified GitFetch: $gitFetch"
		elif ! _git merge-base --is-ancestor "$topCommit" 'FETCH_HEAD'; then
			naughtyCommits[$topCommit]="is not in the specified ref GitFetch: $gitFetch"
		fi
	done

	if [ "${#naughtyCommits[@]}" -gt 0 ]; then
		echo " - $img:"
		for naughtyCommit in "${!naughtyCommits[@]}"; do
			echo "   - commit $naughtyCommit:"
			sed -e 's/^/     - /' <<<"${naughtyCommits[$naughtyCommit]}"
		done
		echo
	fi
	unset naughtyCommits
done
