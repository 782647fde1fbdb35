//! Go's `fmt` for template values: `%v` printing (what an action prints), `print`,
//! `println` and `printf`, with Go's number formatting, quoting and error markers
//! (`%!d(string=x)`, `%!v(MISSING)`, `%!(EXTRA ...)`).
//!
//! Invariant: for the value types bashbrew's templates handle (strings, integers, floats,
//! booleans, lists, nil, and the model's Stringers) the output is Go's, byte for byte.
//! Values that implement Go's `fmt.Stringer` (entries, manifests, platforms) format through
//! their `String()`.

use std::fmt::Write;

use crate::manifest::write;

use super::value::{Items, List, Value};

/// `fmt.Sprint(args...)`: operands separated by a space when neither side is a string.
pub fn sprint(args: &[Value<'_>]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let is_string = |v: &Value<'_>| matches!(v, Value::Str(_));
        if i > 0 && !is_string(arg) && !is_string(&args[i - 1]) {
            out.push(' ');
        }
        print_value(&mut out, arg, 0);
    }
    out
}

/// `fmt.Sprintln(args...)`: operands always separated by a space, then a newline.
pub fn sprintln(args: &[Value<'_>]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        print_value(&mut out, arg, 0);
    }
    out.push('\n');
    out
}

/// `%v` of one value, as `fmt.Fprint` prints it.
pub fn print_value(out: &mut String, value: &Value<'_>, depth: usize) {
    match value {
        Value::Invalid => out.push_str(if depth == 0 {
            "<invalid reflect.Value>"
        } else {
            "<invalid Value>"
        }),
        Value::Nil | Value::NilPtr(_) => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float(*f, 'g', None, false)),
        Value::Str(s) => out.push_str(s),
        Value::List(list) => {
            out.push('[');
            for (i, item) in list.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_value(out, &item, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, v)) in m.map().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                out.push_str(v);
            }
            out.push(']');
        }
        Value::Entry(e) => out.push_str(&write::entry_text(e.entry.entry())),
        Value::Manifest(m) => out.push_str(&write::manifest_text(m)),
        Value::Platform(p) => out.push_str(&p.string()),
        Value::Repo(r) => {
            // `&{RepoName TagName Manifest TagEntry TagEntries}`; pointers inside a struct
            // print through their String() methods, as fmt does.
            let r = r.data();
            out.push_str("&{");
            out.push_str(&r.name);
            out.push(' ');
            out.push_str(r.tag.as_deref().unwrap_or(""));
            out.push(' ');
            out.push_str(&write::manifest_text(r.manifest));
            out.push(' ');
            print_value(out, &r.tag_entry(), depth + 1);
            out.push(' ');
            print_value(out, &Value::List(r.tag_entries()), depth + 1);
            out.push('}');
        }
        Value::Group(g) => {
            out.push('{');
            print_value(out, &Value::List(g.shared_tags_value()), depth + 1);
            out.push(' ');
            print_value(out, &Value::List(g.entries_value()), depth + 1);
            out.push('}');
        }
        Value::Time(t) => out.push_str(&format_time(*t)),
    }
}

/// `time.Time.String()` of a UTC instant: `2006-01-02 15:04:05 +0000 UTC`.
pub fn format_time(secs: i64) -> String {
    let stamp = crate::utc::rfc3339(secs);
    let (date, time) = stamp
        .trim_end_matches('Z')
        .split_once('T')
        .unwrap_or((&stamp, ""));
    format!("{date} {time} +0000 UTC")
}

/// Go's `strconv.FormatFloat(f, fmt, prec, 64)` for `e`, `E`, `f`, `g`, `G` (`prec` None is
/// the shortest representation); `sharp` is fmt's `#` flag (keep the decimal point).
pub fn format_float(f: f64, verb: char, prec: Option<usize>, sharp: bool) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let neg = f.is_sign_negative();
    let a = f.abs();
    // Decimal digits and the decimal point position (value = 0.d1d2d3... * 10^dp).
    let (digits, dp) = decimal_digits(a, verb, prec);
    let mut body = match verb {
        'e' | 'E' => exp_form(&digits, dp, prec.map(|p| p + 1), verb == 'E'),
        'f' | 'F' => fixed_form(&digits, dp, prec),
        _ => {
            // %g: shortest, or `prec` significant digits.
            let shortest = prec.is_none();
            let mut eprec = prec.unwrap_or(digits.len()).max(1);
            if eprec > digits.len() && digits.len() as i64 >= dp {
                eprec = digits.len();
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            if exp < -4 || exp >= eprec as i64 {
                let keep = if shortest {
                    None
                } else {
                    Some(digits.len().min(prec.unwrap_or(1).max(1)))
                };
                let mut s = exp_form(&digits, dp, keep.or(Some(digits.len())), verb == 'G');
                if sharp {
                    s = sharp_g(s, prec.unwrap_or(6).max(1), digits.len());
                }
                s
            } else {
                let decimals = (digits.len() as i64 - dp).max(0) as usize;
                let mut s = fixed_form(&digits, dp, Some(decimals));
                if sharp {
                    s = sharp_g(s, prec.unwrap_or(6).max(1), digits.len());
                }
                s
            }
        }
    };
    if sharp && (verb == 'e' || verb == 'E' || verb == 'f' || verb == 'F') && !body.contains('.') {
        // `%#.0f` keeps the point.
        match body.find(['e', 'E']) {
            Some(i) => body.insert(i, '.'),
            None => body.push('.'),
        }
    }
    if neg && (a != 0.0 || f.is_sign_negative()) {
        format!("-{body}")
    } else {
        body
    }
}

/// `%#g` keeps trailing zeros up to the precision and the decimal point.
fn sharp_g(s: String, prec: usize, _have: usize) -> String {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (s[..i].to_string(), s[i..].to_string()),
        None => (s, String::new()),
    };
    let mut m = mantissa;
    if !m.contains('.') {
        m.push('.');
    }
    let significant = m.chars().filter(|c| c.is_ascii_digit()).count();
    let leading_zeros = m
        .chars()
        .take_while(|c| *c == '0' || *c == '.')
        .filter(|c| *c == '0')
        .count();
    let mut have = significant - leading_zeros.min(significant.saturating_sub(1));
    while have < prec {
        m.push('0');
        have += 1;
    }
    m + &exp
}

/// The decimal digits of a non-negative finite float: shortest round-trip digits, or
/// rounded to `prec` for the given verb; trailing zeros removed (except for fixed forms
/// which pad later). Returns (digits, decimal point position).
fn decimal_digits(a: f64, verb: char, prec: Option<usize>) -> (Vec<u8>, i64) {
    if a == 0.0 {
        return (vec![b'0'], 1);
    }
    let text = match (verb, prec) {
        (_, None) => format!("{a:e}"),
        ('e' | 'E', Some(p)) => format!("{a:.p$e}"),
        ('f' | 'F', Some(p)) => {
            let fixed = format!("{a:.p$}");
            return fixed_digits(&fixed);
        }
        (_, Some(p)) => {
            let p = p.max(1) - 1;
            format!("{a:.p$e}")
        }
    };
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exp + 1)
}

fn fixed_digits(fixed: &str) -> (Vec<u8>, i64) {
    let (int, frac) = fixed.split_once('.').unwrap_or((fixed, ""));
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let mut dp = int.len() as i64;
    while digits.len() > 1 && digits[0] == b'0' {
        digits.remove(0);
        dp -= 1;
    }
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits == [b'0'] {
        dp = 1;
    }
    (digits, dp)
}

/// `d.ddde±XX` with `keep` significant digits (padded with zeros).
fn exp_form(digits: &[u8], dp: i64, keep: Option<usize>, upper: bool) -> String {
    let keep = keep.unwrap_or(digits.len()).max(1);
    let mut s = String::new();
    s.push(digits[0] as char);
    if keep > 1 {
        s.push('.');
        for i in 1..keep {
            s.push(*digits.get(i).unwrap_or(&b'0') as char);
        }
    }
    let exp = if digits == [b'0'] { 0 } else { dp - 1 };
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(s, "{:02}", exp.abs());
    s
}

/// `ddd.ddd` with `decimals` digits after the point (all of them when None).
fn fixed_form(digits: &[u8], dp: i64, decimals: Option<usize>) -> String {
    let mut s = String::new();
    if dp <= 0 {
        s.push('0');
    } else {
        for i in 0..dp as usize {
            s.push(*digits.get(i).unwrap_or(&b'0') as char);
        }
    }
    let decimals = decimals.unwrap_or((digits.len() as i64 - dp).max(0) as usize);
    if decimals > 0 {
        s.push('.');
        for i in 0..decimals as i64 {
            let at = dp + i;
            let d = if at < 0 {
                b'0'
            } else {
                *digits.get(at as usize).unwrap_or(&b'0')
            };
            s.push(d as char);
        }
    }
    s
}

/// Go's `strconv.Quote` (or `QuoteToASCII` with `ascii`).
pub fn quote(s: &str, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\u{fffd}' => out.push_str(if ascii { "\\ufffd" } else { "\u{fffd}" }),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if ascii && !c.is_ascii() => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c if !is_go_print(c) => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` for characters outside ASCII.
fn is_go_print(c: char) -> bool {
    !(c.is_control()
        || matches!(c as u32, 0xad | 0x2028 | 0x2029 | 0x200b..=0x200f | 0xfeff | 0xe000..=0xf8ff)
        || (c.is_whitespace() && c != ' '))
}

/// Go's `strconv.QuoteRune`.
fn quote_rune(c: char, ascii: bool) -> String {
    if c == '\'' {
        return "'\\''".to_string();
    }
    if c == '"' {
        return "'\"'".to_string();
    }
    let q = quote(&c.to_string(), ascii);
    format!("'{}'", &q[1..q.len() - 1])
}

/// One `%...` directive's flags, width and precision.
#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Spec {
    /// Pads `s` to the width: spaces (left or right), or zeros after a sign.
    fn pad(&self, s: String, numeric: bool) -> String {
        let Some(width) = self.width else {
            return s;
        };
        let len = s.chars().count();
        if len >= width {
            return s;
        }
        let fill = width - len;
        if self.minus {
            return s + &" ".repeat(fill);
        }
        if self.zero && numeric {
            let (sign, rest) = match s.chars().next() {
                Some(c @ ('+' | '-' | ' ')) => (c.to_string(), s[1..].to_string()),
                _ => (String::new(), s.clone()),
            };
            return sign + &"0".repeat(fill) + &rest;
        }
        if self.zero && !numeric {
            return "0".repeat(fill) + &s;
        }
        " ".repeat(fill) + &s
    }
}

/// `fmt.Sprintf(format, args...)`.
pub fn sprintf(format: &str, args: &[Value<'_>]) -> String {
    let mut out = String::new();
    let bytes = format.as_bytes();
    let mut arg = 0usize;
    let mut reordered = false;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i] != b'%' {
            i += 1;
        }
        out.push_str(&format[start..i]);
        if i >= bytes.len() {
            break;
        }
        i += 1; // '%'
        let mut spec = Spec::default();
        while i < bytes.len() {
            match bytes[i] {
                b'-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                b'+' => spec.plus = true,
                b'#' => spec.sharp = true,
                b' ' => spec.space = true,
                b'0' => spec.zero = !spec.minus,
                _ => break,
            }
            i += 1;
        }
        // Argument index `[n]` before the width.
        if let Some((n, next)) = arg_index(bytes, i) {
            match n {
                Some(n) => arg = n,
                None => {
                    out.push_str("%!(BADINDEX)");
                    i = next;
                    continue;
                }
            }
            reordered = true;
            i = next;
        }
        if i < bytes.len() && bytes[i] == b'*' {
            i += 1;
            match args.get(arg) {
                Some(Value::Int(w)) => {
                    if *w < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                    spec.width = Some(w.unsigned_abs() as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            arg += 1;
        } else {
            let (n, next) = number(bytes, i);
            spec.width = n;
            i = next;
        }
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            if let Some((n, next)) = arg_index(bytes, i) {
                if let Some(n) = n {
                    arg = n;
                }
                reordered = true;
                i = next;
            }
            if i < bytes.len() && bytes[i] == b'*' {
                i += 1;
                match args.get(arg) {
                    Some(Value::Int(p)) if *p >= 0 => spec.prec = Some(*p as usize),
                    Some(Value::Int(_)) => spec.prec = None,
                    _ => out.push_str("%!(BADPREC)"),
                }
                arg += 1;
            } else {
                let (n, next) = number(bytes, i);
                spec.prec = Some(n.unwrap_or(0));
                i = next;
            }
        }
        if let Some((n, next)) = arg_index(bytes, i) {
            if let Some(n) = n {
                arg = n;
            }
            reordered = true;
            i = next;
        }
        let Some(verb) = format[i..].chars().next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += verb.len_utf8();
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(value) = args.get(arg) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        arg += 1;
        out.push_str(&format_one(value, verb, &spec));
    }
    if !reordered && arg < args.len() {
        out.push_str("%!(EXTRA ");
        for (n, extra) in args[arg..].iter().enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            match extra {
                Value::Nil | Value::Invalid => out.push_str("<nil>"),
                other => {
                    out.push_str(other.type_name());
                    out.push('=');
                    print_value(&mut out, other, 0);
                }
            }
        }
        out.push(')');
    }
    out
}

/// `[n]` at `i`: Some(Some(index)) for a valid 1-based index, Some(None) for a bad one.
fn arg_index(bytes: &[u8], i: usize) -> Option<(Option<usize>, usize)> {
    if bytes.get(i) != Some(&b'[') {
        return None;
    }
    let close = bytes[i..].iter().position(|&b| b == b']')? + i;
    let n = std::str::from_utf8(&bytes[i + 1..close])
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n >= 1)
        .map(|n| n - 1);
    Some((n, close + 1))
}

fn number(bytes: &[u8], mut i: usize) -> (Option<usize>, usize) {
    let start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    if i == start {
        (None, i)
    } else {
        (
            std::str::from_utf8(&bytes[start..i])
                .ok()
                .and_then(|s| s.parse().ok()),
            i,
        )
    }
}

/// `%!verb(type=value)`.
fn bad_verb(value: &Value<'_>, verb: char) -> String {
    match value {
        Value::Nil | Value::Invalid => format!("%!{verb}(<nil>)"),
        other => {
            let mut s = format!("%!{verb}({}=", other.type_name());
            print_value(&mut s, other, 0);
            s.push(')');
            s
        }
    }
}

/// One formatted operand.
fn format_one(value: &Value<'_>, verb: char, spec: &Spec) -> String {
    if verb == 'T' {
        let name = match value {
            Value::Nil | Value::Invalid => "<nil>",
            other => other.type_name(),
        };
        return spec.pad(name.to_string(), false);
    }
    if verb == 'v' && spec.sharp {
        return spec.pad(go_syntax(value), false);
    }
    match value {
        Value::Bool(b) => match verb {
            't' | 'v' => spec.pad(b.to_string(), false),
            _ => bad_verb(value, verb),
        },
        Value::Int(n) => format_int(*n, verb, spec).unwrap_or_else(|| bad_verb(value, verb)),
        Value::Float(f) => {
            format_float_verb(*f, verb, spec).unwrap_or_else(|| bad_verb(value, verb))
        }
        Value::Str(s) => format_str(s, verb, spec).unwrap_or_else(|| bad_verb(value, verb)),
        Value::Nil | Value::Invalid | Value::NilPtr(_) if verb == 'v' => {
            spec.pad("<nil>".to_string(), false)
        }
        Value::NilPtr(_) if matches!(verb, 's' | 'q' | 'x' | 'X') => {
            // A nil Stringer: fmt catches the panic and prints <nil>.
            spec.pad("<nil>".to_string(), false)
        }
        Value::Nil | Value::Invalid | Value::NilPtr(_) => bad_verb(value, verb),
        Value::List(list) => {
            let mut s = String::from("[");
            for (i, item) in list.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(&format_one(&item, verb, &Spec::default()));
            }
            s.push(']');
            spec.pad(s, false)
        }
        Value::Map(m) => {
            let mut s = String::from("map[");
            for (i, (k, v)) in m.map().into_iter().flatten().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                let plain = Spec::default();
                s.push_str(
                    &format_str(k, verb, &plain)
                        .unwrap_or_else(|| bad_verb(&Value::string(k), verb)),
                );
                s.push(':');
                s.push_str(
                    &format_str(v, verb, &plain)
                        .unwrap_or_else(|| bad_verb(&Value::string(v), verb)),
                );
            }
            s.push(']');
            spec.pad(s, false)
        }
        Value::Entry(_)
        | Value::Manifest(_)
        | Value::Platform(_)
        | Value::Time(_)
        | Value::Repo(_)
        | Value::Group(_) => {
            let mut text = String::new();
            print_value(&mut text, value, 0);
            let stringer = !matches!(value, Value::Repo(_) | Value::Group(_));
            if stringer && matches!(verb, 'v' | 's' | 'q' | 'x' | 'X') {
                format_str(&text, verb, spec).unwrap_or(text)
            } else if verb == 'v' {
                spec.pad(text, false)
            } else {
                bad_verb(value, verb)
            }
        }
    }
}

fn format_str(s: &str, verb: char, spec: &Spec) -> Option<String> {
    let truncated = |s: &str| match spec.prec {
        Some(p) => s.chars().take(p).collect::<String>(),
        None => s.to_string(),
    };
    Some(match verb {
        'v' | 's' => spec.pad(truncated(s), false),
        'q' => {
            let s = truncated(s);
            if spec.sharp && !s.contains('`') && s.chars().all(|c| c == '\t' || !c.is_control()) {
                spec.pad(format!("`{s}`"), false)
            } else {
                spec.pad(quote(&s, spec.plus), false)
            }
        }
        'x' | 'X' => {
            let bytes = s.as_bytes();
            let bytes = match spec.prec {
                Some(p) => &bytes[..p.min(bytes.len())],
                None => bytes,
            };
            let mut out = String::new();
            for (i, b) in bytes.iter().enumerate() {
                if spec.space && i > 0 {
                    out.push(' ');
                }
                if spec.sharp && (spec.space || i == 0) {
                    out.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    let _ = write!(out, "{b:02x}");
                } else {
                    let _ = write!(out, "{b:02X}");
                }
            }
            spec.pad(out, false)
        }
        _ => return None,
    })
}

fn format_int(n: i64, verb: char, spec: &Spec) -> Option<String> {
    let neg = n < 0;
    let abs = n.unsigned_abs();
    let digits = match verb {
        'd' | 'v' => abs.to_string(),
        'b' => format!("{abs:b}"),
        'o' | 'O' => format!("{abs:o}"),
        'x' => format!("{abs:x}"),
        'X' => format!("{abs:X}"),
        'c' => {
            let c = char::from_u32(n as u32).unwrap_or('\u{fffd}');
            return Some(spec.pad(c.to_string(), false));
        }
        'q' => {
            let c = char::from_u32(n as u32).unwrap_or('\u{fffd}');
            return Some(spec.pad(quote_rune(c, spec.plus), false));
        }
        'U' => {
            let mut s = format!("U+{:04X}", n);
            if spec.sharp
                && let Some(c) = char::from_u32(n as u32)
            {
                let _ = write!(s, " '{c}'");
            }
            return Some(spec.pad(s, false));
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => return None,
        _ => return None,
    };
    let mut digits = digits;
    if let Some(p) = spec.prec {
        if p == 0 && n == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let prefix = match verb {
        'b' if spec.sharp => "0b",
        'o' if spec.sharp => "0",
        'O' => "0o",
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        _ => "",
    };
    let sign = if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let body = format!("{prefix}{digits}");
    let zero_ok = spec.prec.is_none();
    let spec = Spec {
        zero: spec.zero && zero_ok,
        ..*spec
    };
    Some(spec.pad(format!("{sign}{body}"), true))
}

fn format_float_verb(f: f64, verb: char, spec: &Spec) -> Option<String> {
    let (verb, prec) = match verb {
        'v' => ('g', spec.prec),
        'g' | 'G' => (verb, spec.prec),
        'e' | 'E' | 'f' | 'F' => (verb, Some(spec.prec.unwrap_or(6))),
        _ => return None,
    };
    let mut s = format_float(f, verb, prec, spec.sharp);
    if !s.starts_with('-') && !s.starts_with('+') {
        if spec.plus {
            s.insert(0, '+');
        } else if spec.space {
            s.insert(0, ' ');
        }
    } else if s == "+Inf" && !spec.plus {
        s = if spec.space { " Inf" } else { "+Inf" }.to_string();
    }
    let numeric = !s.contains("Inf") && !s.contains("NaN");
    Some(spec.pad(s, numeric))
}

/// `%#v`: Go syntax for the basic values; the model's values print their `%v`.
pub fn go_syntax(value: &Value<'_>) -> String {
    match value {
        Value::Str(s) => quote(s, false),
        Value::Nil | Value::Invalid => "<nil>".to_string(),
        Value::NilPtr(t) => format!("({})(nil)", t.name()),
        Value::List(list) => {
            if list.is_nil() {
                return format!("{}(nil)", list.ty.name());
            }
            let items: Vec<String> = list.iter().map(|v| go_syntax(&v)).collect();
            format!("{}{{{}}}", list.ty.name(), items.join(", "))
        }
        Value::Float(f) => format_float(*f, 'g', None, false),
        other => {
            let mut s = String::new();
            print_value(&mut s, other, 0);
            s
        }
    }
}

/// The items of a list as strings, when they all are.
pub fn list_strings(list: &List<'_>) -> Option<Vec<String>> {
    match &list.items {
        Items::Nil => Some(Vec::new()),
        Items::Strs(s) => Some(s.to_vec()),
        Items::Owned(v) => v.iter().map(|x| x.as_str().map(str::to_string)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value<'static> {
        Value::string(v)
    }

    #[test]
    fn floats_print_as_go_does() {
        let cases = [
            (3.0, "3"),
            (1.5, "1.5"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.25, "-2.25"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float(f, 'g', None, false), want, "{f}");
        }
        assert_eq!(
            sprintf(
                "%.2f|%e|%8.3f|%-6.1f|",
                &[
                    Value::Float(2.34567),
                    Value::Float(1234.5),
                    Value::Float(2.0),
                    Value::Float(1.25)
                ]
            ),
            "2.35|1.234500e+03|   2.000|1.2   |"
        );
        assert_eq!(
            sprintf(
                "%g %G %.3g",
                &[
                    Value::Float(1e21),
                    Value::Float(1e-7),
                    Value::Float(2.34567)
                ]
            ),
            "1e+21 1E-07 2.35"
        );
    }

    #[test]
    fn printf_verbs_flags_and_errors() {
        let cases: &[(&str, Vec<Value<'static>>, &str)] = &[
            (
                "%s-%5s-%-5s|",
                vec![s("a"), s("b"), s("c")],
                "a-    b-c    |",
            ),
            (
                "%q %+q %#q",
                vec![s("a\"b\n"), s("é"), s("x")],
                "\"a\\\"b\\n\" \"\\u00e9\" `x`",
            ),
            (
                "%d %5d %-5d| %05d %+d %x %X %o %b %#x",
                vec![
                    Value::Int(42),
                    Value::Int(42),
                    Value::Int(42),
                    Value::Int(-42),
                    Value::Int(3),
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(5),
                    Value::Int(255),
                ],
                "42    42 42   | -0042 +3 ff FF 10 101 0xff",
            ),
            (
                "%c %q %U",
                vec![Value::Int(65), Value::Int(65), Value::Int(0x1f600)],
                "A 'A' U+1F600",
            ),
            (
                "%t %v",
                vec![Value::Bool(true), Value::Bool(false)],
                "true false",
            ),
            ("%x % x", vec![s("hi"), s("hi")], "6869 68 69"),
            ("%d", vec![s("x")], "%!d(string=x)"),
            ("%s %s", vec![s("x")], "x %!s(MISSING)"),
            ("%s", vec![s("x"), Value::Int(1)], "x%!(EXTRA int=1)"),
            ("%v %s", vec![Value::Nil, Value::Nil], "<nil> %!s(<nil>)"),
            (
                "%T %T %T",
                vec![s("x"), Value::Int(1), Value::Nil],
                "string int <nil>",
            ),
            ("100%%", vec![], "100%"),
            ("%[2]s %[1]s", vec![s("a"), s("b")], "b a"),
            (
                "%*d|%.*s",
                vec![Value::Int(4), Value::Int(7), Value::Int(2), s("abcdef")],
                "   7|ab",
            ),
            ("%.2s", vec![s("héllo")], "hé"),
            ("%!", vec![], "%!!(MISSING)"),
            ("50%", vec![], "50%!(NOVERB)"),
        ];
        for (format, args, want) in cases {
            assert_eq!(sprintf(format, args), *want, "{format}");
        }
    }

    #[test]
    fn print_and_println_space_like_go() {
        assert_eq!(sprint(&[s("a"), s("b")]), "ab");
        assert_eq!(
            sprint(&[Value::Int(1), Value::Int(2), s("x"), Value::Int(3)]),
            "1 2x3"
        );
        assert_eq!(sprintln(&[s("a"), Value::Int(1)]), "a 1\n");
        let list = Value::List(List::owned(
            super::super::value::ListType::Strings,
            vec![s("a"), s("b")],
        ));
        assert_eq!(sprint(std::slice::from_ref(&list)), "[a b]");
        assert_eq!(sprintf("%q", &[list]), "[\"a\" \"b\"]");
    }

    #[test]
    fn times_print_as_go_does() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13:20 +0000 UTC");
    }
}
