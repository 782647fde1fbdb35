//! Go `text/template` behaviour over a small manifest, with a host that needs no git.

use super::*;
use crate::manifest::{self, Entry};
use model::{Froms, Host, RepoData};
use value::EntryRef;

const MANIFEST: &str = "Maintainers: Jane (@jane)
GitRepo: https://example.com/x.git

Tags: 1.0, 1, latest
SharedTags: stable
Architectures: amd64, arm64v8
GitCommit: 0123456789abcdef0123456789abcdef01234567
Directory: 1

Tags: 1.0-alpine, alpine
SharedTags: stable
GitCommit: 0123456789abcdef0123456789abcdef01234567
Directory: 1/alpine
arm64v8-Directory: 1/alpine-arm
";

struct TestHost;

impl<'a> Host<'a> for TestHost {
    fn arch(&self) -> &str {
        "amd64"
    }
    fn namespace(&self) -> &str {
        ""
    }
    fn arch_namespace(&self, arch: &str) -> String {
        if arch == "arm64v8" {
            "arm64v8".into()
        } else {
            String::new()
        }
    }
    fn index(&self) -> i64 {
        0
    }
    fn git_cache(&self) -> Result<String, String> {
        Ok("/cache/git".into())
    }
    fn dockerfile(&self, _: &RepoData<'a>, entry: &Entry, arch: &str) -> Result<Froms, String> {
        Ok(Froms {
            froms: vec![format!("debian:{}-{arch}", entry.tags[0])],
            last_stage: format!("debian:{}", entry.tags[0]),
        })
    }
    fn git_time(&self, _: &RepoData<'a>, _: &Entry, _: &str) -> Result<i64, String> {
        Ok(1_700_000_000)
    }
    fn skip_constraints(&self, _: &RepoData<'a>, _: &Entry) -> bool {
        false
    }
    fn image_id(&self, image: &str) -> Result<String, String> {
        Ok(format!("sha256:id-of-{image}"))
    }
    fn sorted_entries(&self, repo: &RepoData<'a>, _: bool) -> Result<Vec<EntryRef<'a>>, String> {
        Ok(repo
            .manifest
            .entries
            .iter()
            .rev()
            .map(EntryRef::Borrowed)
            .collect())
    }
}

fn manifest() -> crate::manifest::Manifest {
    manifest::parse("x", MANIFEST.as_bytes()).unwrap().manifest
}

/// Runs `template` over the repository `x` (or `x:TAG`).
fn run_tag(template: &str, tag: Option<&str>) -> Result<String, String> {
    let m = manifest();
    let tmpl = Template::parse("--format", template).map_err(|e| e.0)?;
    let tag_entries = match tag {
        Some(t) => m
            .entries_for_tag(t)
            .into_iter()
            .map(|i| EntryRef::Borrowed(&m.entries[i]))
            .collect(),
        None => Vec::new(),
    };
    let repo = RepoData {
        name: "x".into(),
        tag: tag.map(str::to_string),
        manifest: &m,
        tag_entries,
        library: None,
    };
    let mut out = String::new();
    tmpl.execute(
        Value::Repo(value::RepoRef::Borrowed(&repo)),
        &TestHost,
        &mut out,
    )
    .map_err(|e| e.0)?;
    Ok(out)
}

fn run(template: &str) -> String {
    run_tag(template, None).unwrap_or_else(|e| panic!("{template}: {e}"))
}

fn fail(template: &str) -> String {
    run_tag(template, None).expect_err(template)
}

#[test]
fn actions_pipelines_and_variables() {
    let cases = [
        ("{{ .RepoName }}", "x"),
        (
            "{{ $n := .RepoName }}{{ $n }}-{{ $n = \"y\" }}{{ $n }}",
            "x-y",
        ),
        ("{{ .RepoName | printf \"%s!\" }}", "x!"),
        ("{{ len .Entries }} {{ len .Manifest.Entries }}", "2 2"),
        ("{{ (index .Entries 1).Directory }}", "1/alpine"),
        (
            "{{ 3 }} {{ 1.5 }} {{ 1e3 }} {{ 'a' }} {{ 0x10 }} {{ true }}",
            "3 1.5 1000 97 16 true",
        ),
        ("{{ \"a\\tb\" }}|{{ `raw\\n` }}", "a\tb|raw\\n"),
        (
            "{{ .TagName }}|{{ .TagEntry }}|{{ .TagEntries }}",
            "|<nil>|[]",
        ),
    ];
    for (template, want) in cases {
        assert_eq!(run(template), want, "{template}");
    }
    // A missing map key prints "<no value>"; here the model has none, so check the printer.
    assert_eq!(
        run_tag("{{ .TagEntry.Tags }}", Some("alpine")).unwrap(),
        "[1.0-alpine alpine]"
    );
}

#[test]
fn control_structures() {
    let cases = [
        (
            "{{ range $i, $e := .Entries }}{{ $i }}={{ index $e.Tags 0 }};{{ end }}",
            "0=1.0;1=1.0-alpine;",
        ),
        (
            "{{ range .Entries }}{{ .Directory }} {{ end }}",
            "1 1/alpine ",
        ),
        ("{{ range .TagEntries }}x{{ else }}empty{{ end }}", "empty"),
        (
            "{{ range $e := .Entries }}{{ if eq $e.Directory \"1\" }}{{ continue }}{{ end }}{{ $e.Directory }}{{ end }}",
            "1/alpine",
        ),
        (
            "{{ range .Entries }}{{ .Directory }}{{ break }}{{ end }}",
            "1",
        ),
        ("{{ range 3 }}{{ . }}{{ end }}", "012"),
        (
            "{{ if false }}a{{ else if .RepoName }}b{{ else }}c{{ end }}",
            "b",
        ),
        (
            "{{ with .TagName }}t{{ else with .RepoName }}{{ . }}{{ end }}",
            "x",
        ),
        ("{{ with $x := .RepoName }}{{ $x }}{{ . }}{{ end }}", "xx"),
        (
            "{{ define \"t\" }}[{{ . }}]{{ end }}{{ template \"t\" .RepoName }}",
            "[x]",
        ),
        ("{{ block \"b\" .RepoName }}<{{ . }}>{{ end }}", "<x>"),
        ("{{- /* comment */ -}}\n  a  {{- \" b \" -}}  c", "a b c"),
        (
            "{{ if and .RepoName (not .TagName) }}y{{ end }}{{ or .TagName \"dflt\" }}",
            "ydflt",
        ),
        ("{{ and 1 0 2 }} {{ or 0 \"\" }} {{ and }}", ""),
    ];
    for (template, want) in cases.iter().take(cases.len() - 1) {
        assert_eq!(run(template), *want, "{template}");
    }
    // Variables set in a range body are reset per iteration; `and` short-circuits.
    assert_eq!(
        run("{{ and 0 .Nope.X }}{{ or 1 (index .Entries 99) }}"),
        "01"
    );
}

#[test]
fn builtins_and_bashbrew_functions() {
    let cases = [
        (
            "{{ eq 1 1 }} {{ eq \"a\" \"b\" \"a\" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1 2 }}",
            "true true true true true true false",
        ),
        (
            "{{ print \"a\" 1 2 \"b\" }}|{{ println 1 \"x\" }}|",
            "a1 2b|1 x\n|",
        ),
        (
            "{{ html \"<a&b>\" }} {{ js \"it's\" }} {{ urlquery \"a b\" }}",
            "&lt;a&amp;b&gt; it\\'s a+b",
        ),
        (
            "{{ slice \"abcdef\" 1 3 }} {{ slice .Manifest.Global.Architectures 0 1 }}",
            "bc [amd64]",
        ),
        ("{{ index \"abc\" 1 }}", "98"),
        (
            "{{ hasPrefix \"a\" \"abc\" }} {{ hasSuffix \"c\" \"abd\" }}",
            "true false",
        ),
        (
            "{{ ternary \"y\" \"n\" true }} {{ ternary \"y\" \"n\" \"\" }}",
            "y n",
        ),
        (
            "{{ first \"a\" \"b\" }} {{ last (index .Entries 0).Tags }}",
            "a latest",
        ),
        (
            "{{ join \",\" \"a\" \"b\" }} {{ (index .Entries 0).Tags | join \"/\" }}",
            "a,b 1.0/1/latest",
        ),
        (
            "{{ \"git://x.git\" | replace \"git://\" \"https://\" | trimSuffixes \".git\" }}",
            "https://x",
        ),
        (
            "{{ \"v1.2-alpine\" | trimPrefixes \"v\" | trimSuffixes \"-alpine\" }}",
            "1.2",
        ),
        (
            "{{ getenv \"KEG_TEMPLATE_TEST_UNSET\" \"set\" \"unset\" }}",
            "unset",
        ),
        (
            "{{ sha256sum \"hello world\" }}",
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
        ),
        ("{{ split \",\" \"a,b\" | json }}", "[\"a\",\"b\"]"),
        (
            "{{ i }} {{ arch }} [{{ namespace }}] {{ archNamespace \"arm64v8\" }} {{ gitCache }}",
            "0 amd64 [] arm64v8 /cache/git",
        ),
        (
            "{{ (ociPlatform \"arm64v8\").String }} {{ (ociPlatform \"i386\").Architecture }} {{ ociPlatform \"arm32v7\" }} {{ ociPlatform \"amd64\" | json }}",
            "linux/arm64/v8 386 linux/arm/v7 {\"architecture\":\"amd64\",\"os\":\"linux\"}",
        ),
        (
            "{{ len (archFilter \"arm64v8\" .Entries) }} {{ len (archFilter \"amd64\" .Manifest.Entries) }}",
            "1 2",
        ),
        (
            "{{ json defaults }}",
            "{\"Maintainers\":null,\"Tags\":null,\"SharedTags\":null,\"Architectures\":[\"amd64\"],\"GitRepo\":\"\",\"GitFetch\":\"refs/heads/master\",\"GitCommit\":\"\",\"Directory\":\".\",\"File\":\"Dockerfile\",\"Builder\":\"\",\"ArchValues\":null,\"Constraints\":null}",
        ),
        (
            "{{ printf \"%q %d %5.1f %T\" \"a\" 42 2.34567 .Entries }}",
            "\"a\" 42   2.3 []*manifest.Manifest2822Entry",
        ),
    ];
    for (template, want) in cases {
        assert_eq!(run(template), want, "{template}");
    }
}

#[test]
fn data_model_fields_and_methods() {
    let cases = [
        (
            "{{ .Manifest.Global.ClearDefaults defaults }}",
            "Maintainers: Jane (@jane)\nGitRepo: https://example.com/x.git",
        ),
        (
            "{{ range .Entries }}{{ .ClearDefaults $.Manifest.Global }}\n--\n{{ end }}",
            "Tags: 1.0, 1, latest\nSharedTags: stable\nArchitectures: amd64, arm64v8\nGitCommit: 0123456789abcdef0123456789abcdef01234567\nDirectory: 1\n--\nTags: 1.0-alpine, alpine\nSharedTags: stable\nGitCommit: 0123456789abcdef0123456789abcdef01234567\nDirectory: 1/alpine\narm64v8-Directory: 1/alpine-arm\n--\n",
        ),
        (
            "{{ $e := index .Entries 1 }}{{ $e.ArchDirectory \"arm64v8\" }} {{ $e.ArchDirectory \"amd64\" }} {{ $e.ArchFile \"amd64\" }} [{{ $e.ArchBuilder \"amd64\" }}] {{ $e.ArchGitFetch \"amd64\" }}",
            "1/alpine-arm 1/alpine Dockerfile [] refs/heads/master",
        ),
        (
            "{{ $e := index .Entries 0 }}{{ $e.HasArchitecture \"arm64v8\" }} {{ $e.HasTag \"1\" }} {{ $e.HasSharedTag \"stable\" }} {{ $e.TagsString }}",
            "true true true 1.0, 1, latest",
        ),
        (
            "{{ $.Tags \"ns\" false (index .Entries 1) }} {{ $.Tags \"\" true (index .Entries 1) }}",
            "[ns/x:1.0-alpine ns/x:alpine ns/x:stable] [x:1.0-alpine]",
        ),
        (
            "{{ (.Manifest.GetTag \"alpine\").Directory }} {{ .Manifest.GetTag \"nope\" }} {{ len (.Manifest.GetSharedTag \"stable\") }} {{ .Manifest.GetAllSharedTags }}",
            "1/alpine <nil> 2 [stable]",
        ),
        (
            "{{ range .Manifest.GetSharedTagGroups }}{{ .SharedTags }} {{ len .Entries }}{{ end }}",
            "[stable] 2",
        ),
        (
            "{{ $.ArchDockerFroms \"arm64v8\" (index .Entries 0) }} {{ $.DockerFroms (index .Entries 0) }} {{ $.ArchLastStageFrom \"amd64\" (index .Entries 1) }}",
            "[debian:1.0-arm64v8] [debian:1.0-amd64] debian:1.0-alpine",
        ),
        (
            "{{ .Identifier }} {{ .EntryIdentifier (index .Entries 1) }} {{ (.EntryRepo (index .Entries 1)).Identifier }}",
            "x x:1.0-alpine x:1.0-alpine",
        ),
        (
            "{{ range .SortedEntries false }}{{ .Directory }} {{ end }}",
            "1/alpine 1 ",
        ),
        // sha256 of the lines GitRepo, GitCommit, Directory, File (no Builder) and the
        // parent's image id, as bashbrew's dockerBuildUniqueBits.
        (
            "{{ $.DockerCacheName (index .Entries 0) }}",
            "bashbrew/cache:468e55f514d911e1169e4b50ec19a0864ff1593fad98dfab778cd7baeef59abf",
        ),
        (
            "{{ $.ArchGitTime \"amd64\" (index .Entries 0) }} {{ ($.ArchGitTime \"amd64\" (index .Entries 0)).Unix }}",
            "2023-11-14 22:13:20 +0000 UTC 1700000000",
        ),
        (
            "{{ json (index .Entries 0).Tags }} {{ (index .Manifest.Entries 0).Constraints | json }} {{ json ((index .Entries 0).ClearDefaults $.Manifest.Global).Maintainers }}",
            "[\"1.0\",\"1\",\"latest\"] [] null",
        ),
    ];
    for (template, want) in cases {
        assert_eq!(run(template), want, "{template}");
    }
    // ArchValues is a map[string]string: keys as fields, index, range in key order, len.
    assert_eq!(
        run(
            "{{ $e := index .Entries 1 }}{{ $e.ArchValues }} {{ len $e.ArchValues }} {{ index $e.ArchValues \"arm64v8-Directory\" }}|{{ index $e.ArchValues \"nope\" }}|{{ range $k, $v := $e.ArchValues }}{{ $k }}={{ $v }}{{ end }} {{ json $e.ArchValues }} {{ (index .Entries 0).ArchValues }}"
        ),
        "map[arm64v8-Directory:1/alpine-arm] 1 1/alpine-arm||arm64v8-Directory=1/alpine-arm {\"arm64v8-Directory\":\"1/alpine-arm\"} map[]"
    );
    assert_eq!(
        run_tag(
            "{{ .TagName }} {{ len .TagEntries }} {{ .TagEntry.Directory }} {{ .Identifier }}",
            Some("stable")
        )
        .unwrap(),
        "stable 2 1 x:1.0"
    );
}

#[test]
fn errors_name_line_column_and_problem_as_go() {
    let cases = [
        (
            "a\n\n\n{{ upper . }}",
            "template: --format:4: function \"upper\" not defined",
        ),
        (
            "{{ nope . }}",
            "template: --format:1: function \"nope\" not defined",
        ),
        (
            "{{ .TagEntry.HasArchitecture arch }}",
            "template: --format:1:12: executing \"--format\" at <.TagEntry.HasArchitecture>: error calling HasArchitecture: runtime error: invalid memory address or nil pointer dereference",
        ),
        (
            "{{ .TagEntry.Tags }}",
            "template: --format:1:12: executing \"--format\" at <.TagEntry.Tags>: nil pointer evaluating *manifest.Manifest2822Entry.Tags",
        ),
        (
            "x\n  {{ .Nope }}",
            "template: --format:2:5: executing \"--format\" at <.Nope>: can't evaluate field Nope in type *main.Repo",
        ),
        (
            "{{ $.Tags \"\" }}",
            "template: --format:1:4: executing \"--format\" at <$.Tags>: wrong number of args for Tags: want 3 got 1",
        ),
        (
            "{{ len }}",
            "template: --format:1:3: executing \"--format\" at <len>: wrong number of args for len: want 1 got 0",
        ),
        (
            "{{ index .Entries 5 }}",
            "template: --format:1:3: executing \"--format\" at <index .Entries 5>: error calling index: index out of range: 5",
        ),
        (
            "{{ hasPrefix 1 \"a\" }}",
            "template: --format:1:13: executing \"--format\" at <1>: expected string; found 1",
        ),
        (
            "{{ .RepoName 1 }}",
            "template: --format:1:3: executing \"--format\" at <.RepoName>: RepoName has arguments but cannot be invoked as function",
        ),
        (
            "{{ first }}",
            "template: --format:1:3: executing \"--format\" at <first>: error calling first: \"first\" requires at least one argument",
        ),
        (
            "{{ eq 1 \"a\" }}",
            "template: --format:1:3: executing \"--format\" at <eq 1 \"a\">: error calling eq: incompatible types for comparison: int and string",
        ),
        (
            "{{ template \"nope\" }}",
            "template: --format:1:12: executing \"--format\" at <{{template \"nope\"}}>: template \"nope\" not defined",
        ),
        (
            "{{ range .RepoName }}{{ end }}",
            "template: --format:1:9: executing \"--format\" at <.RepoName>: range can't iterate over x",
        ),
        (
            "{{ $.Tags \"\" false \"x\" }}",
            "template: --format:1:19: executing \"--format\" at <\"x\">: can't handle \"x\" for arg of type *manifest.Manifest2822Entry",
        ),
        (
            "{{ (index .Entries 0).ClearDefaults .RepoName }}",
            "template: --format:1:36: executing \"--format\" at <.RepoName>: wrong type for value; expected manifest.Manifest2822Entry; got string",
        ),
    ];
    for (template, want) in cases {
        assert_eq!(fail(template), want, "{template}");
    }
}

#[test]
fn no_panic_on_hostile_templates() {
    let hostile = [
        "{{",
        "}}",
        "{{{{}}}}",
        "{{ ( }}",
        "{{ ) }}",
        "{{ | }}",
        "{{ $ }}",
        "{{ . . }}",
        "{{ \"\\x\" }}",
        "{{ 'ab' }}",
        "{{ 1i }}",
        "{{ index . }}",
        "{{ slice .RepoName 5 1 }}",
        "{{ slice .RepoName 0 99 }}",
        "{{ define }}",
        "{{ define \"x\" }}",
        "{{ else }}",
        "{{ range }}",
        "{{ $x := 1 }}{{ $x.Y }}",
        "{{ template \"x\" }}{{ define \"x\" }}{{ template \"x\" }}{{ end }}",
        "{{ printf \"%[9]d %*d\" }}",
        "{{ \"é\" | slice 1 }}",
        "{{ nil }}",
        "{{ (nil).X }}",
        "{{ call . }}",
        "{{ 99999999999999999999 }}",
        "{{ range $a, $b, $c := . }}{{ end }}",
        "{{ with }}{{ end }}",
        "{{ .X.Y.Z 1 2 }}",
        "{{ -}}",
        "{{- }}",
    ];
    for template in hostile {
        let _ = run_tag(template, None);
    }
}

/// Runs `f` on a thread with a small (1 MiB) stack, as a test or a rayon worker has.
fn on_small_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn_scoped(s, f)
            .unwrap()
            .join()
            .unwrap()
    })
}

#[test]
fn deep_nesting_is_bounded_not_a_stack_overflow() {
    let depth = parser::MAX_PARSE_DEPTH;
    let ifs = |n: usize| format!("{}ok{}", "{{if 1}}".repeat(n), "{{end}}".repeat(n));
    let parens = |n: usize| format!("{{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n));
    let withs = |n: usize| format!("{}ok{}", "{{with 1}}".repeat(n), "{{end}}".repeat(n));
    let else_ifs = |n: usize| {
        format!(
            "{{{{if 0}}}}{}ok{{{{end}}}}",
            "{{else if 0}}".repeat(n - 1) + "{{else}}"
        )
    };
    on_small_stack(|| {
        // At the cap everything parses and runs; one more level is Go's parse error.
        assert_eq!(run(&ifs(depth)), "ok");
        assert_eq!(run(&withs(depth)), "ok");
        assert_eq!(run(&parens(depth)), "1");
        assert_eq!(run(&else_ifs(depth)), "ok");
        for too_deep in [ifs(depth + 1), parens(depth + 1), else_ifs(depth + 1)] {
            assert_eq!(
                fail(&too_deep),
                "template: --format:1: max expression depth exceeded"
            );
        }
        // A recursive template whose body nests counts both (Go counts only the calls): the
        // 10001st level (call, if, with, call, ...) is an {{if}}; positions are in the text
        // parsed as --format, as Go's are.
        let recursive = "{{define \"r\"}}{{if 1}}{{with 2}}{{template \"r\" .}}{{end}}{{end}}{{end}}\
                         {{template \"r\" .}}";
        assert_eq!(
            fail(recursive),
            format!(
                "template: --format:1:19: executing \"r\" at \
                 <{{{{if 1}}}}{{{{with 2}}}}{{{{template \"r\" .}}}}{{{{end}}}}{{{{end}}}}>: \
                 exceeded maximum template depth ({})",
                exec::MAX_DEPTH
            )
        );
    });
}
