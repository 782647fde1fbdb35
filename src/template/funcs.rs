//! The functions a `cat --format` template can call: Go's builtins (`and`, `or`, `not`,
//! `len`, `index`, `slice`, `call`, `print`, `printf`, `println`, `html`, `js`, `urlquery`,
//! `eq`, `ne`, `lt`, `le`, `gt`, `ge`), bashbrew's `templatelib` (`hasPrefix`, `hasSuffix`,
//! `ternary`, `first`, `last`, `json`, `join`, `trimPrefixes`, `trimSuffixes`, `replace`,
//! `getenv`, `sha256sum`), bashbrew's `cat` functions (`i`, `arch`, `namespace`,
//! `archNamespace`, `archFilter`, `ociPlatform`, `gitCache`, `defaults`), and keg's one
//! addition, `split`.
//!
//! Invariants: each function has Go's signature (so argument counts and types fail with Go's
//! messages) and Go's behaviour, including the panics bashbrew's functions raise, which
//! surface as `error calling NAME: ...` like Go's recovered panics.

use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::gofmt;
use super::model::{Host, Sig, Ty, default_entry};
use super::value::{EntryRef, EntryVal, Items, List, ListType, Platform, PtrType, Str, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Call,
    Print,
    Printf,
    Println,
    Html,
    Js,
    Urlquery,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    HasPrefix,
    HasSuffix,
    Ternary,
    First,
    Last,
    Json,
    Join,
    TrimPrefixes,
    TrimSuffixes,
    Replace,
    Getenv,
    Sha256sum,
    Split,
    I,
    Arch,
    Namespace,
    ArchNamespace,
    ArchFilter,
    OciPlatform,
    GitCache,
    Defaults,
}

const RV: Ty = Ty::RValue;

/// Every function name, for `docs/compat.md` and the parser's check.
pub const NAMES: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "call",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "hasPrefix",
    "hasSuffix",
    "ternary",
    "first",
    "last",
    "json",
    "join",
    "trimPrefixes",
    "trimSuffixes",
    "replace",
    "getenv",
    "sha256sum",
    "split",
    "i",
    "arch",
    "namespace",
    "archNamespace",
    "archFilter",
    "ociPlatform",
    "gitCache",
    "defaults",
];

/// The function `name`: its id, signature, and whether it is one of Go's builtins.
pub fn lookup(name: &str) -> Option<(Func, Sig, bool)> {
    use Func as F;
    let any_rest = Sig::variadic(&[], Ty::Any);
    Some(match name {
        "and" => (F::And, Sig::variadic(&[RV], RV), true),
        "or" => (F::Or, Sig::variadic(&[RV], RV), true),
        "not" => (F::Not, Sig::fixed(&[RV]), true),
        "len" => (F::Len, Sig::fixed(&[RV]), true),
        "index" => (F::Index, Sig::variadic(&[RV], RV), true),
        "slice" => (F::Slice, Sig::variadic(&[RV], RV), true),
        "call" => (F::Call, Sig::variadic(&[RV], RV), true),
        "print" => (F::Print, any_rest, true),
        "printf" => (F::Printf, Sig::variadic(&[Ty::Str], Ty::Any), true),
        "println" => (F::Println, any_rest, true),
        "html" => (F::Html, any_rest, true),
        "js" => (F::Js, any_rest, true),
        "urlquery" => (F::Urlquery, any_rest, true),
        "eq" => (F::Eq, Sig::variadic(&[RV], RV), true),
        "ne" => (F::Ne, Sig::fixed(&[RV, RV]), true),
        "lt" => (F::Lt, Sig::fixed(&[RV, RV]), true),
        "le" => (F::Le, Sig::fixed(&[RV, RV]), true),
        "gt" => (F::Gt, Sig::fixed(&[RV, RV]), true),
        "ge" => (F::Ge, Sig::fixed(&[RV, RV]), true),
        "hasPrefix" => (F::HasPrefix, Sig::fixed(&[Ty::Str, Ty::Str]), false),
        "hasSuffix" => (F::HasSuffix, Sig::fixed(&[Ty::Str, Ty::Str]), false),
        "ternary" => (F::Ternary, Sig::fixed(&[Ty::Any, Ty::Any, Ty::Any]), false),
        "first" => (F::First, any_rest, false),
        "last" => (F::Last, any_rest, false),
        "json" => (F::Json, Sig::fixed(&[Ty::Any]), false),
        "join" => (F::Join, any_rest, false),
        "trimPrefixes" => (F::TrimPrefixes, any_rest, false),
        "trimSuffixes" => (F::TrimSuffixes, any_rest, false),
        "replace" => (F::Replace, any_rest, false),
        "getenv" => (F::Getenv, any_rest, false),
        "sha256sum" => (F::Sha256sum, Sig::fixed(&[Ty::Str]), false),
        "split" => (F::Split, Sig::fixed(&[Ty::Str, Ty::Str]), false),
        "i" => (F::I, Sig::fixed(&[]), false),
        "arch" => (F::Arch, Sig::fixed(&[]), false),
        "namespace" => (F::Namespace, Sig::fixed(&[]), false),
        "archNamespace" => (F::ArchNamespace, Sig::fixed(&[Ty::Str]), false),
        "archFilter" => (F::ArchFilter, Sig::variadic(&[Ty::Str], Ty::Any), false),
        "ociPlatform" => (F::OciPlatform, Sig::fixed(&[Ty::Str]), false),
        "gitCache" => (F::GitCache, Sig::fixed(&[]), false),
        "defaults" => (F::Defaults, Sig::fixed(&[]), false),
        _ => return None,
    })
}

type R<'a> = Result<Value<'a>, String>;

/// Calls a function (other than `and` and `or`, which the evaluator short-circuits).
pub fn call<'a>(func: Func, args: Vec<Value<'a>>, host: &dyn Host<'a>) -> R<'a> {
    use Func as F;
    match func {
        F::And | F::Or => Err("unreachable".into()),
        F::Not => Ok(Value::Bool(!args[0].truth())),
        F::Len => length(&args[0]),
        F::Index => index(&args[0], &args[1..]),
        F::Slice => slice(&args[0], &args[1..]),
        F::Call => match &args[0] {
            Value::Invalid | Value::Nil => Err("call of nil".into()),
            other => Err(format!(
                "non-function of type {} (templates here have no function values)",
                other.type_name()
            )),
        },
        F::Print => Ok(Value::string(&gofmt::sprint(&args))),
        F::Println => Ok(Value::string(&gofmt::sprintln(&args))),
        F::Printf => {
            let format = args[0].as_str().unwrap_or("").to_string();
            Ok(Value::string(&gofmt::sprintf(&format, &args[1..])))
        }
        F::Html => Ok(Value::string(&html_escape(&eval_args(&args)))),
        F::Js => Ok(Value::string(&js_escape(&eval_args(&args)))),
        F::Urlquery => Ok(Value::string(&query_escape(&eval_args(&args)))),
        F::Eq => eq(&args[0], &args[1..]).map(Value::Bool),
        F::Ne => eq(&args[0], &args[1..2]).map(|b| Value::Bool(!b)),
        F::Lt => lt(&args[0], &args[1]).map(Value::Bool),
        F::Le => le(&args[0], &args[1]).map(Value::Bool),
        F::Gt => le(&args[0], &args[1]).map(|b| Value::Bool(!b)),
        F::Ge => lt(&args[0], &args[1]).map(|b| Value::Bool(!b)),
        F::HasPrefix => Ok(Value::Bool(str_of(&args[1]).starts_with(str_of(&args[0])))),
        F::HasSuffix => Ok(Value::Bool(str_of(&args[1]).ends_with(str_of(&args[0])))),
        F::Ternary => Ok(if args[2].truth() {
            args[0].clone()
        } else {
            args[1].clone()
        }),
        F::First => {
            let items = things("first", &args)?;
            items
                .into_iter()
                .next()
                .ok_or_else(|| "runtime error: index out of range [0] with length 0".into())
        }
        F::Last => {
            let items = things("last", &args)?;
            items
                .into_iter()
                .last()
                .ok_or_else(|| "runtime error: index out of range [-1]".into())
        }
        F::Json => Ok(Value::string(&json(&args[0]))),
        F::Join => {
            let strs = strings("join", &args)?;
            Ok(Value::string(&strs[1..].join(&strs[0])))
        }
        F::TrimPrefixes | F::TrimSuffixes => {
            let name = if func == F::TrimPrefixes {
                "trimPrefixes"
            } else {
                "trimSuffixes"
            };
            let strs = strings(name, &args)?;
            let (s, mods) = strs.split_last().expect("at least one");
            let mut s = s.as_str();
            for m in mods {
                s = if func == F::TrimPrefixes {
                    s.strip_prefix(m.as_str()).unwrap_or(s)
                } else {
                    s.strip_suffix(m.as_str()).unwrap_or(s)
                };
            }
            Ok(Value::string(s))
        }
        F::Replace => {
            let strs = strings("replace", &args)?;
            let (s, pairs) = strs.split_last().expect("at least one");
            if pairs.len() % 2 == 1 {
                return Err("strings.NewReplacer: odd argument count".into());
            }
            Ok(Value::string(&replace(s, pairs)))
        }
        F::Getenv => {
            let items = things("getenv", &args)?;
            let name = match &items[0] {
                Value::Str(s) => s.to_string(),
                other => return Err(conversion(other, "string")),
            };
            let value = std::env::var(&name).unwrap_or_default();
            let (set, unset) = match items.len() {
                1 => (Value::string(&value), Value::string("")),
                2 => (Value::string(&value), items[1].clone()),
                3 => (items[1].clone(), items[2].clone()),
                n => {
                    return Err(format!(
                        "expected between 1 and 3 arguments to \"getenv\", got {n}"
                    ));
                }
            };
            Ok(if value.is_empty() { unset } else { set })
        }
        F::Sha256sum => Ok(Value::string(&crate::git::hex(&Sha256::digest(
            str_of(&args[0]).as_bytes(),
        )))),
        F::Split => {
            let sep = str_of(&args[0]);
            let s = str_of(&args[1]);
            let parts: Vec<Value<'a>> = if sep.is_empty() {
                s.chars().map(|c| Value::string(&c.to_string())).collect()
            } else {
                s.split(sep).map(Value::string).collect()
            };
            Ok(Value::List(List::owned(ListType::Strings, parts)))
        }
        F::I => Ok(Value::Int(host.index())),
        F::Arch => Ok(Value::string(host.arch())),
        F::Namespace => Ok(Value::string(host.namespace())),
        F::ArchNamespace => Ok(Value::string(&host.arch_namespace(str_of(&args[0])))),
        F::ArchFilter => arch_filter(&args),
        F::OciPlatform => Ok(match crate::arch::platform(str_of(&args[0])) {
            Some(p) => Value::Platform(Rc::new(Platform::of(p))),
            None => Value::NilPtr(PtrType::Platform),
        }),
        F::GitCache => host.git_cache().map(|p| Value::string(&p)),
        F::Defaults => Ok(Value::owned_entry(default_entry())),
    }
}

fn str_of<'v>(v: &'v Value<'_>) -> &'v str {
    v.as_str().unwrap_or("")
}

/// Go's panic text for a failed `x.(string)`.
fn conversion(value: &Value<'_>, want: &str) -> String {
    match value {
        Value::Nil | Value::Invalid => {
            format!("interface conversion: interface {{}} is nil, not {want}")
        }
        other => format!(
            "interface conversion: interface {{}} is {}, not {want}",
            other.type_name()
        ),
    }
}

/// templatelib's `thingsActionFactory`: the arguments with lists spread out.
fn things<'a>(name: &str, args: &[Value<'a>]) -> Result<Vec<Value<'a>>, String> {
    if args.is_empty() {
        return Err(format!(
            "{} requires at least one argument",
            gofmt::quote(name, false)
        ));
    }
    let mut out = Vec::new();
    for arg in args {
        match arg {
            Value::List(list) => out.extend(list.iter()),
            Value::Invalid | Value::Nil => {
                return Err("reflect: call of reflect.Value.Interface on zero Value".into());
            }
            other => out.push(other.clone()),
        }
    }
    Ok(out)
}

/// templatelib's `stringsActionFactory`: the spread arguments, each a string.
fn strings(name: &str, args: &[Value<'_>]) -> Result<Vec<String>, String> {
    things(name, args)?
        .iter()
        .map(|v| match v {
            Value::Str(s) => Ok(s.to_string()),
            other => Err(conversion(other, "string")),
        })
        .collect()
}

/// `strings.NewReplacer(pairs...).Replace(s)`: leftmost match, earlier pairs first.
fn replace(s: &str, pairs: &[String]) -> String {
    let pairs: Vec<(&str, &str)> = pairs
        .chunks(2)
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut last_empty = usize::MAX;
    while i <= s.len() {
        let rest = &s[i..];
        let found = pairs
            .iter()
            .find(|(old, _)| rest.starts_with(old) && !(old.is_empty() && last_empty == i));
        match found {
            Some((old, new)) if !old.is_empty() => {
                out.push_str(new);
                i += old.len();
            }
            Some((_, new)) => {
                out.push_str(new);
                last_empty = i;
                if let Some(c) = rest.chars().next() {
                    out.push(c);
                    i += c.len_utf8();
                } else {
                    break;
                }
            }
            None => match rest.chars().next() {
                Some(c) => {
                    out.push(c);
                    i += c.len_utf8();
                }
                None => break,
            },
        }
    }
    out
}

/// bashbrew's `archFilter`: the entries (of lists of entries, or entry values) that support
/// the architecture, as `[]manifest.Manifest2822Entry`.
fn arch_filter<'a>(args: &[Value<'a>]) -> R<'a> {
    let arch = str_of(&args[0]);
    if args.len() < 2 {
        return Err("\"archFilter\" requires at least one argument".into());
    }
    let mut out = Vec::new();
    let mut keep = |entry: &EntryRef<'a>| {
        if entry.entry().has_architecture(arch) {
            out.push(Value::Entry(EntryVal {
                entry: entry.clone(),
                ptr: false,
                addressable: true,
            }));
        }
    };
    for arg in &args[1..] {
        match arg {
            Value::List(l) if matches!(l.ty, ListType::EntryPtrs | ListType::Entries) => {
                for item in l.iter() {
                    if let Value::Entry(e) = item {
                        keep(&e.entry);
                    }
                }
            }
            Value::Entry(e) if !e.ptr => keep(&e.entry),
            other => {
                let ty = match other {
                    Value::Nil | Value::Invalid => "<nil>",
                    other => other.type_name(),
                };
                return Err(format!("\"archFilter\" encountered unknown type: {ty}"));
            }
        }
    }
    Ok(Value::List(List::owned(ListType::Entries, out)))
}

/// `len`.
fn length<'a>(item: &Value<'a>) -> R<'a> {
    match item {
        Value::List(l) => Ok(Value::Int(l.len() as i64)),
        Value::Map(m) => Ok(Value::Int(m.len() as i64)),
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::NilPtr(_) => Err("len of nil pointer".into()),
        Value::Invalid | Value::Nil => {
            Err("reflect: call of reflect.Value.Type on zero Value".into())
        }
        other => Err(format!("len of type {}", other.type_name())),
    }
}

fn index_arg(index: &Value<'_>, cap: usize) -> Result<usize, String> {
    let x = match index {
        Value::Int(i) => *i,
        Value::Invalid | Value::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    if x < 0 || x as usize > cap {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

/// `index item i j ...`.
fn index<'a>(item: &Value<'a>, indexes: &[Value<'a>]) -> R<'a> {
    let mut item = item.clone();
    if matches!(item, Value::Invalid | Value::Nil) {
        return Err("index of untyped nil".into());
    }
    for index in indexes {
        item = match &item {
            Value::NilPtr(_) => return Err("index of nil pointer".into()),
            Value::List(l) => {
                let x = index_arg(index, l.len())?;
                if x == l.len() {
                    return Err("reflect: slice index out of range".into());
                }
                l.get(x)
            }
            Value::Map(m) => match index {
                Value::Str(key) => Value::string(
                    m.map()
                        .and_then(|map| map.get(&**key))
                        .map_or("", String::as_str),
                ),
                Value::Invalid | Value::Nil => {
                    return Err("value is nil; should be of type string".into());
                }
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::Str(s) => {
                let x = index_arg(index, s.len())?;
                if x == s.len() {
                    return Err("reflect: string index out of range".into());
                }
                Value::Int(i64::from(s.as_bytes()[x]))
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

/// `slice item [i [j [k]]]`.
fn slice<'a>(item: &Value<'a>, indexes: &[Value<'a>]) -> R<'a> {
    if matches!(item, Value::Invalid | Value::Nil) {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match item {
        Value::Str(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::List(l) => l.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut idx = [0, len, len];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(index, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match item {
        Value::Str(s) => Value::string(&String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]])),
        Value::List(l) => Value::List(l.slice(idx[0], idx[1])),
        _ => Value::Invalid,
    })
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum BasicKind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
}

fn basic_kind(v: &Value<'_>) -> BasicKind {
    match v {
        Value::Bool(_) => BasicKind::Bool,
        Value::Int(_) => BasicKind::Int,
        Value::Float(_) => BasicKind::Float,
        Value::Str(_) => BasicKind::String,
        _ => BasicKind::Invalid,
    }
}

fn type_or_nil(v: &Value<'_>) -> &'static str {
    match v {
        Value::Invalid | Value::Nil => "<nil>",
        other => other.type_name(),
    }
}

/// Whether a value is Go's nil (no value, a nil interface, pointer or slice).
fn is_nil(v: &Value<'_>) -> bool {
    match v {
        Value::Invalid | Value::Nil | Value::NilPtr(_) => true,
        Value::List(l) => l.is_nil(),
        Value::Map(m) => m.map().is_none(),
        _ => false,
    }
}

/// Go's reflect kind names, to decide whether two values "can compare".
fn kind(v: &Value<'_>) -> &'static str {
    match v {
        Value::Invalid | Value::Nil => "invalid",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Entry(e) if !e.ptr => "struct",
        Value::Group(_) | Value::Time(_) => "struct",
        _ => "ptr",
    }
}

/// Pointer identity of two pointer values.
fn same_pointer(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Entry(x), Value::Entry(y)) => match (&x.entry, &y.entry) {
            (EntryRef::Borrowed(p), EntryRef::Borrowed(q)) => std::ptr::eq(*p, *q),
            (EntryRef::Owned(p), EntryRef::Owned(q)) => Rc::ptr_eq(p, q),
            _ => false,
        },
        (Value::Manifest(p), Value::Manifest(q)) => std::ptr::eq(*p, *q),
        (Value::Platform(p), Value::Platform(q)) => Rc::ptr_eq(p, q),
        (Value::Repo(p), Value::Repo(q)) => std::ptr::eq(p.data(), q.data()),
        _ => false,
    }
}

/// `eq a b c ...`: a == b || a == c || ...
fn eq(a: &Value<'_>, others: &[Value<'_>]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic_kind(a);
    for b in others {
        let k2 = basic_kind(b);
        let truth = if k1 != k2 {
            if a.is_valid() && !matches!(a, Value::Nil) && b.is_valid() && !matches!(b, Value::Nil)
            {
                return Err(format!(
                    "incompatible types for comparison: {} and {}",
                    type_or_nil(a),
                    type_or_nil(b)
                ));
            }
            false
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => **x == **y,
                _ => {
                    let (ka, kb) = (kind(a), kind(b));
                    if ka != kb && ka != "invalid" && kb != "invalid" {
                        let mut msg = String::from("non-comparable types ");
                        gofmt::print_value(&mut msg, a, 0);
                        msg.push_str(&format!(": {}, {}: ", type_or_nil(a), type_or_nil(b)));
                        gofmt::print_value(&mut msg, b, 0);
                        return Err(msg);
                    }
                    if is_nil(a) || is_nil(b) {
                        is_nil(a) == is_nil(b)
                    } else if kb == "slice" || kb == "struct" || kb == "map" {
                        let mut msg = String::from("non-comparable type ");
                        gofmt::print_value(&mut msg, b, 0);
                        msg.push_str(&format!(": {}", type_or_nil(b)));
                        return Err(msg);
                    } else {
                        same_pointer(a, b)
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 == BasicKind::Invalid || k2 == BasicKind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        ));
    }
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(**x < **y),
        _ => Err("invalid type for comparison".into()),
    }
}

fn le(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

/// `text/template`'s `evalArgs`: one string argument as is, else `fmt.Sprint`.
fn eval_args(args: &[Value<'_>]) -> String {
    if let [Value::Str(s)] = args {
        return s.to_string();
    }
    gofmt::sprint(args)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{fffd}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if c.is_ascii() => out.push(c),
            c if !c.is_control() => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `json.Marshal` of a template value (HTML-safe string escaping, struct fields in
/// declaration order, nil slices and pointers as `null`).
pub fn json(value: &Value<'_>) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &Value<'_>) {
    match value {
        Value::Invalid | Value::Nil | Value::NilPtr(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&json_float(*f)),
        Value::Str(s) => json_string(out, s),
        Value::List(l) => match &l.items {
            Items::Nil => out.push_str("null"),
            _ => {
                out.push('[');
                for (i, item) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json(out, &item);
                }
                out.push(']');
            }
        },
        Value::Map(m) => match m.map() {
            None => out.push_str("null"),
            Some(map) => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(out, k);
                    out.push(':');
                    json_string(out, v);
                }
                out.push('}');
            }
        },
        Value::Entry(_) => {
            // The struct's fields in declaration order (keg has no `Paragraph`; see
            // docs/compat.md).
            let fields: Vec<(&str, Value<'_>)> = super::model::ENTRY_FIELDS
                .iter()
                .map(|n| (*n, super::model::field(value, n).unwrap_or_default()))
                .collect();
            json_object(out, &fields);
        }
        Value::Manifest(_) | Value::Repo(_) | Value::Group(_) => {
            let names: &[&str] = match value {
                Value::Manifest(_) => &["Global", "Entries"],
                Value::Repo(_) => &["RepoName", "TagName", "Manifest", "TagEntry", "TagEntries"],
                _ => &["SharedTags", "Entries"],
            };
            let fields: Vec<(&str, Value<'_>)> = names
                .iter()
                .map(|n| (*n, super::model::field(value, n).unwrap_or_default()))
                .collect();
            json_object(out, &fields);
        }
        Value::Platform(p) => {
            let mut fields = vec![
                ("architecture", Value::string(&p.architecture)),
                ("os", Value::string(&p.os)),
            ];
            if !p.variant.is_empty() {
                fields.push(("variant", Value::string(&p.variant)));
            }
            json_object(out, &fields);
        }
        Value::Time(t) => {
            let text = gofmt::format_time(*t);
            // RFC 3339: `2006-01-02T15:04:05Z`.
            let rfc = format!("{}T{}Z", &text[..10], &text[11..19]);
            json_string(out, &rfc);
        }
    }
}

fn json_object(out: &mut String, fields: &[(&str, Value<'_>)]) {
    out.push('{');
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, name);
        out.push(':');
        write_json(out, value);
    }
    out.push('}');
}

/// Go's JSON string encoding (with its HTML-safe escapes).
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's JSON number for a float64.
fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let mut s = gofmt::format_float(f, 'e', None, false);
        // e-09 -> e-9
        if let Some(i) = s.find("e-0") {
            s.remove(i + 2);
        }
        s
    } else {
        // Shortest digits, never an exponent.
        let (digits, dp) = shortest(abs);
        let mut s = if f < 0.0 {
            String::from("-")
        } else {
            String::new()
        };
        if dp <= 0 {
            s.push_str("0.");
            s.push_str(&"0".repeat((-dp) as usize));
            s.push_str(&digits);
        } else if dp as usize >= digits.len() {
            s.push_str(&digits);
            s.push_str(&"0".repeat(dp as usize - digits.len()));
        } else {
            s.push_str(&digits[..dp as usize]);
            s.push('.');
            s.push_str(&digits[dp as usize..]);
        }
        s
    }
}

fn shortest(a: f64) -> (String, i64) {
    if a == 0.0 {
        return ("0".into(), 1);
    }
    let text = format!("{a:e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse::<i64>().unwrap_or(0) + 1)
}

/// A borrowed string value (for callers building values from model strings).
pub fn borrowed<'a>(s: &'a str) -> Value<'a> {
    Value::Str(Str::Borrowed(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value<'static> {
        Value::string(v)
    }

    fn list(items: &[&str]) -> Value<'static> {
        Value::List(List::owned(
            ListType::Strings,
            items.iter().map(|x| s(x)).collect(),
        ))
    }

    #[test]
    fn json_matches_go_encoding() {
        assert_eq!(
            json(&s("a<b>&\"\\\n\u{2028}")),
            "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u2028\""
        );
        assert_eq!(json(&list(&["x", "y"])), "[\"x\",\"y\"]");
        assert_eq!(json(&Value::List(List::nil(ListType::Strings))), "null");
        assert_eq!(json(&Value::Float(1.5)), "1.5");
        assert_eq!(json(&Value::Float(1e21)), "1e+21");
        assert_eq!(json(&Value::Float(1e-7)), "1e-7");
        assert_eq!(json(&Value::Float(100.0)), "100");
    }

    #[test]
    fn replacer_matches_go() {
        let r = |s: &str, pairs: &[&str]| {
            replace(s, &pairs.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(r("1.2.3", &[".", "_"]), "1_2_3");
        assert_eq!(r("git://x.git", &["git://", "https://"]), "https://x.git");
        assert_eq!(r("aaa", &["a", "1", "aa", "2"]), "111");
        assert_eq!(r("abc", &["", "-"]), "-a-b-c-");
    }

    #[test]
    fn comparisons_match_go() {
        assert_eq!(eq(&s("a"), &[s("b"), s("a")]), Ok(true));
        assert_eq!(eq(&Value::Invalid, &[s("a")]), Ok(false));
        assert_eq!(
            eq(&Value::Int(1), &[s("a")]),
            Err("incompatible types for comparison: int and string".into())
        );
        assert_eq!(lt(&Value::Int(1), &Value::Int(2)), Ok(true));
        assert_eq!(
            lt(&Value::Bool(true), &Value::Bool(false)),
            Err("invalid type for comparison".into())
        );
        assert_eq!(eq(&Value::NilPtr(PtrType::Entry), &[Value::Nil]), Ok(true));
    }

    #[test]
    fn escapers_match_go() {
        assert_eq!(
            html_escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"
        );
        assert_eq!(
            js_escape("a'b\"c<d>=&\n"),
            "a\\'b\\\"c\\u003Cd\\u003E\\u003D\\u0026\\u000A"
        );
        assert_eq!(query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
