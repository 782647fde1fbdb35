//! The template engine alone, in process: a template over a manifest of N entries (default
//! 5000, `cargo bench --bench template -- N`), timed per execution (median of 20 after 3
//! warm-ups). docs/compat.md compares this with the gtmpl crate on the same workload.

use std::time::Instant;

use keg::manifest;
use keg::template::model::{Froms, Host, RepoData};
use keg::template::value::{EntryRef, RepoRef};
use keg::template::{Template, Value};

struct NoHost;

impl<'a> Host<'a> for NoHost {
    fn arch(&self) -> &str {
        "amd64"
    }
    fn namespace(&self) -> &str {
        ""
    }
    fn arch_namespace(&self, _: &str) -> String {
        String::new()
    }
    fn index(&self) -> i64 {
        0
    }
    fn git_cache(&self) -> Result<String, String> {
        Err("no git here".into())
    }
    fn dockerfile(&self, _: &RepoData<'a>, _: &manifest::Entry, _: &str) -> Result<Froms, String> {
        Err("no git here".into())
    }
    fn git_time(&self, _: &RepoData<'a>, _: &manifest::Entry, _: &str) -> Result<i64, String> {
        Err("no git here".into())
    }
    fn skip_constraints(&self, _: &RepoData<'a>, _: &manifest::Entry) -> bool {
        false
    }
    fn image_id(&self, _: &str) -> Result<String, String> {
        Err("no engine here".into())
    }
    fn sorted_entries(&self, _: &RepoData<'a>, _: bool) -> Result<Vec<EntryRef<'a>>, String> {
        Err("no sorting here".into())
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5000);
    let mut text = String::from("Maintainers: X (@x)\nGitRepo: https://example.com/x.git\n");
    for i in 0..n {
        text.push_str(&format!(
            "\nTags: {i}a, {i}b\nGitCommit: 0123456789abcdef0123456789abcdef01234567\nDirectory: d{i}\n"
        ));
    }
    let manifest = manifest::parse("x", text.as_bytes()).unwrap().manifest;
    let repo = RepoData {
        name: "x".into(),
        tag: None,
        manifest: &manifest,
        tag_entries: Vec::new(),
        library: None,
    };
    for (name, source) in [
        (
            "range, if, eq, join (first entry printed)",
            r#"{{ range $i, $e := .Entries }}{{ if eq $i 0 }}{{ $.RepoName }} {{ join "," $e.Tags }}{{ end }}{{ end }}"#,
        ),
        (
            "empty range with trim markers",
            "{{- range .Entries -}}{{- end -}}ok",
        ),
        (
            "every entry as JSON (json, first, .Tags method)",
            r#"{{ range $e := .Entries }}{"first":{{ json ($e.Tags | first) }},"tags":{{ json ($.Tags "" false $e) }},"dir":{{ json ($e.ArchDirectory "amd64") }}}{{ "\n" }}{{ end }}"#,
        ),
    ] {
        let template = Template::parse("bench", source).unwrap();
        let mut times = Vec::new();
        let mut bytes = 0;
        for run in 0..23 {
            let mut out = String::new();
            let start = Instant::now();
            template
                .execute(Value::Repo(RepoRef::Borrowed(&repo)), &NoHost, &mut out)
                .unwrap();
            let elapsed = start.elapsed();
            bytes = out.len();
            if run >= 3 {
                times.push(elapsed.as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{name}: {n} entries, median {:.3} ms, min {:.3} ms ({bytes} bytes out)",
            times[times.len() / 2],
            times[0]
        );
    }
}
