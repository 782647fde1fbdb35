#!/usr/bin/env bash
# In the style of official-images' naughty-from.sh and the put-shared tooling: per
# architecture, each tag's parents (`.DockerFroms`, exported BASHBREW_ARCH), whether a parent
# in the library supports the architecture (`.TagEntry.HasArchitecture arch | ternary`), and
# where each architecture is pushed (`archFilter`, `archNamespace`, `ociPlatform`).
set -Eeuo pipefail

_arches() {
	bashbrew cat --format '
		{{- range .TagEntries -}}
			{{- .Architectures | join "\n" -}}
			{{- "\n" -}}
		{{- end -}}
	' "$@" | sort -u
}

_froms() {
	bashbrew cat --format '
		{{- range .TagEntries -}}
			{{- $.DockerFroms . | join "\n" -}}
			{{- "\n" -}}
		{{- end -}}
	' "$@" | sort -u
}

for img in $(bashbrew list --uniq "$@" | sort -u); do
	for BASHBREW_ARCH in $(_arches "$img"); do
		export BASHBREW_ARCH
		for from in $(_froms "$img"); do
			if supported="$(bashbrew cat --format '{{ .TagEntry.HasArchitecture arch | ternary arch "" }}' "$from" 2>/dev/null)" && [ -n "$supported" ]; then
				echo "$img [$BASHBREW_ARCH]: FROM $from (in the library)"
			else
				echo "$img [$BASHBREW_ARCH]: FROM $from (not in the library for $BASHBREW_ARCH)"
			fi
		done
	done
done
unset BASHBREW_ARCH

bashbrew --arch-namespace arm64v8=registry.example/arm64v8 cat --format '
	{{- range $a := .Manifest.Global.Architectures -}}
		{{- $p := ociPlatform $a -}}
		{{- $.RepoName }} {{ $a }}: {{ len (archFilter $a $.Entries) }} entries, {{ $p.OS }}/{{ $p.Architecture }}{{ with $p.Variant }}/{{ . }}{{ end }} ({{ $p }}), pushed to {{ archNamespace $a | printf "%q" }}{{ "\n" -}}
	{{- end -}}
' "$@"
