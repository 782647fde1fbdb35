#!/usr/bin/env bash
# In the style of official-images' diff-pr.sh: a `bashbrew cat` template writes `git archive`
# commands over bashbrew's cache ("$BASHBREW_CACHE/git"), after `$.DockerFrom .` made bashbrew
# fetch each commit; the script runs them and lists what the build contexts hold.
set -Eeuo pipefail

export BASHBREW_CACHE="${BASHBREW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bashbrew}"
export BASHBREW_ARCH='amd64'

template='
	{{- range $.Entries -}}
		{{- if .HasArchitecture arch -}}
			{{- $from := $.DockerFrom . -}}
			git -C "$BASHBREW_CACHE/git" archive --format=tar
			{{- " " -}}
			{{- "--prefix=" -}}
			{{- $.RepoName -}}
			_
			{{- .Tags | last -}}
			{{- "/" -}}
			{{- " " -}}
			{{- .ArchGitCommit arch -}}
			{{- ":" -}}
			{{- $dir := .ArchDirectory arch -}}
			{{- (eq $dir ".") | ternary "" $dir -}}
			{{- "\n" -}}
		{{- end -}}
	{{- end -}}
'

for image; do
	script="$(bashbrew cat -f "$template" "$image")"
	( eval "$script" | tar -ti ) | sort # -i: one tar stream per entry, concatenated
done
