#!/usr/bin/env bash
# In the style of bashbrew's scripts/github-actions/generate.sh: one line of CI matrix per
# tag of an image, in build order, from `list --build-order`, `cat --format` (with
# `.TagEntry`, `ternary`, `first`, `.Tags`, `.ArchDirectory`, `.ArchDockerFroms`, `json`)
# and `parents --depth=1`.
set -Eeuo pipefail

image="$1"

tags="$(bashbrew list --build-order --uniq "$image")"

for tag in $tags; do
	bashbrewImage="${tag##*/}" # account for BASHBREW_NAMESPACE being set
	meta="$(
		bashbrew cat --format '
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
		' "$bashbrewImage" | jq -c '
			.froms |= unique
			| .os = (if .constraints == [] or .constraints == ["!aufs"] then "ubuntu-latest" else "invalid-or-unknown" end)
			| .build = ([
				if .builder == "classic" or .builder == "" then "DOCKER_BUILDKIT=0 docker build"
				elif .builder == "buildkit" then "docker buildx build"
				else "exit 1" end
			] + (.tags | map("--tag " + @sh)) + (if .file != "Dockerfile" then ["--file", ((.directory + "/" + .file) | @sh)] else [] end) + [.directory | @sh] | join(" "))
		'
	)"

	parent=
	if parent="$(bashbrew parents --depth=1 "$bashbrewImage" | grep "^${tag%%:*}:")" && [ -n "$parent" ]; then
		parent="$(bashbrew parents "$bashbrewImage" | grep "^${tag%%:*}:" | tail -1)" # the "ultimate" parent in this repository
	fi
	jq -c --arg parent "$parent" '. + { parent: $parent }' <<<"$meta"
done
