//! Property tests of `--git-mirror` / KEG_GIT_MIRRORS: [`keg::git::parse_mirror`],
//! [`keg::git::parse_mirrors`] and the URL rewriting of [`keg::git::resolve_url`], then the
//! same values through the binary (flag and environment variable): no panic on any text,
//! a clear usage error (exit 2) for a bad value, and rewriting that matches a plain model.
//!
//! KEG_FUZZ_CASES sets the number of cases (scripts/fuzz runs a long pass).

mod common;

use std::path::Path;

use keg::git::{Mirror, parse_mirror, parse_mirrors, resolve_url};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("KEG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Text mixing the characters that matter here with anything else.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(vec!["=", ",", " ", "\t", "/", ":", "://", "@", ".", "..", "~", "é", "\u{0}", "\n", "%2C"])
                .prop_map(String::from),
            4 => "[a-z0-9]{1,6}",
            1 => any::<String>(),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

/// A mirror a person would write: no `=` in the prefix, no `,` anywhere, not blank.
fn mirror() -> impl Strategy<Value = (String, String)> {
    (
        "( ?)(https://|git@|file:///)?[a-z0-9.]{1,8}(/[a-z0-9._-]{0,6}){0,3}( ?)",
        "( ?)(/srv/mirror|\\.\\./m|file:///m|https://m\\.example)(/[a-z0-9._=-]{0,6}){0,2}( ?)",
    )
}

/// resolve_url as the docs state it: the longest matching prefix, the first of equals.
fn model(url: &str, mirrors: &[Mirror]) -> Option<String> {
    let mut best: Option<&Mirror> = None;
    for m in mirrors {
        if url.starts_with(&m.prefix) && best.is_none_or(|b| m.prefix.len() > b.prefix.len()) {
            best = Some(m);
        }
    }
    best.map(|m| format!("{}{}", m.replacement, &url[m.prefix.len()..]))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_or_is_refused_with_a_reason(spec in text()) {
        match parse_mirror(&spec) {
            Ok(m) => {
                let (prefix, replacement) = spec.split_once('=').expect("Ok means there is a =");
                prop_assert_eq!(&m.prefix, prefix.trim());
                prop_assert_eq!(&m.replacement, replacement.trim());
                prop_assert!(!m.prefix.is_empty() && !m.replacement.is_empty());
            }
            Err(e) => {
                let message = e.to_string();
                // The message quotes the value (escaped) and says what was expected.
                prop_assert!(message.contains(&format!("{spec:?}")), "{}", message);
                prop_assert!(message.contains("expected") || message.contains("empty"), "{}", message);
            }
        }
        // A list: every non-blank item, in order, or the first bad one's error.
        let items: Vec<&str> = spec.split(',').filter(|i| !i.trim().is_empty()).collect();
        match parse_mirrors(&spec) {
            Ok(list) => {
                prop_assert_eq!(list.len(), items.len());
                for (m, item) in list.iter().zip(&items) {
                    prop_assert_eq!(Ok(m.clone()), parse_mirror(item).map_err(|e| e.to_string()));
                }
            }
            Err(_) => prop_assert!(items.iter().any(|i| parse_mirror(i).is_err())),
        }
    }

    #[test]
    fn written_mirrors_round_trip(mirrors in prop::collection::vec(mirror(), 0..5)) {
        let list = mirrors
            .iter()
            .map(|(p, r)| format!("{p}={r}"))
            .collect::<Vec<_>>()
            .join(",");
        let parsed = parse_mirrors(&list).expect("valid mirrors");
        let expected: Vec<Mirror> = mirrors
            .iter()
            .map(|(p, r)| Mirror { prefix: p.trim().to_string(), replacement: r.trim().to_string() })
            .collect();
        prop_assert_eq!(parsed, expected);
    }

    #[test]
    fn rewriting_follows_the_longest_prefix(
        url in text(),
        mirrors in prop::collection::vec((text(), text()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut mirrors: Vec<Mirror> = mirrors
            .into_iter()
            .map(|(prefix, replacement)| Mirror { prefix, replacement })
            .collect();
        // Often, a prefix of the URL itself (on a character boundary).
        let bounds: Vec<usize> = url.char_indices().map(|(i, _)| i).chain([url.len()]).collect();
        let at = bounds[cut.index(bounds.len())];
        if at > 0 {
            mirrors.push(Mirror { prefix: url[..at].to_string(), replacement: "/mirror".into() });
        }
        let base = Path::new("/lib");
        let resolved = resolve_url(&url, base, &mirrors);
        match model(&url, &mirrors) {
            Some(expected) => prop_assert_eq!(resolved, expected),
            None => prop_assert!(resolved == url || resolved.starts_with("/lib"), "{}", resolved),
        }
    }
}

proptest! {
    // Each case starts the binary twice: fewer of them.
    #![proptest_config(ProptestConfig { cases: cases().div_ceil(8), ..ProptestConfig::default() })]

    #[test]
    fn the_binary_takes_or_refuses_any_value(spec in text()) {
        prop_assume!(!spec.contains('\u{0}'));
        let test = common::Test::new();
        test.manifest("x", "Maintainers: X (@x)\nGitRepo: https://example.com/x.git\n\nTags: 1\nGitCommit: 0123456789abcdef0123456789abcdef01234567\n");
        let flag = test.run(&["--git-mirror", &spec, "list", "x"]);
        let env = test.command(&["list", "x"]).env("KEG_GIT_MIRRORS", &spec).output().expect("run keg");
        let env = common::Run::from(env);
        // The flag takes one value that clap splits at commas, as the variable does.
        let items: Vec<&str> = spec.split(',').filter(|i| !i.trim().is_empty()).collect();
        let valid = items.iter().all(|i| parse_mirror(i).is_ok());
        for run in [&flag, &env] {
            if valid {
                prop_assert_eq!(run.code, 0, "{:?}", run);
                prop_assert_eq!(run.stdout.as_str(), "x:1\n");
            } else {
                prop_assert_eq!(run.code, 2, "{:?}", run);
                prop_assert!(run.stderr.contains("--git-mirror"), "{}", run.stderr);
                prop_assert!(run.stdout.is_empty());
            }
        }
    }
}
