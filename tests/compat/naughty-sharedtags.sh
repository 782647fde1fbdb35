#!/usr/bin/env bash
# In the style of official-images' naughty-sharedtags.sh: shared tags must not name two
# entries for the same architecture (`range`, `join`, `json`, `first`).
set -Eeuo pipefail

if [ "$#" -eq 0 ]; then
	set -- '--all'
fi

bashbrew cat --format '
	{{- range $e := .Entries -}}
		{{- range $t := .SharedTags -}}
			{{- "{" -}}
				"sharedTag": {{ join ":" $.RepoName $t | json }},
				"tag": {{ join ":" $.RepoName ($e.Tags | first) | json }},
				"arches": {{ $e.Architectures | json }}
			{{- "}\n" -}}
		{{- end -}}
	{{- end -}}
' "$@" | jq -rn '
	reduce inputs as $in ({}; .[$in.sharedTag] |= (. // {} | .arches += $in.arches | .tags += [$in.tag]))
	| to_entries
	| map(
		.value.arches |= (group_by(.) | map(select(length > 1)) | flatten)
		| select(.value.arches | length > 0)
		| " - \(.key): (duplicate architectures in SharedTags; \(.value.tags | join(", ")))\([ "", .value.arches[] ] | join("\n   - "))"
	)
	| join("\n\n")
'
