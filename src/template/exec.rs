//! The evaluator of Go's `text/template`: walks a parsed set over a value, writing text.
//!
//! Invariants: the semantics are Go's `exec.go`: pipelines pass the previous command's value
//! as the last argument, fields and methods resolve on the value's type (methods of `T` and
//! `*T` alike), arguments are checked and converted against the callee's signature, `and`
//! and `or` short-circuit, variables are scoped to the enclosing control structure,
//! `{{template}}` starts with only `$`; and every error names the template, the line and the
//! 0-based byte column of the node, the node, and the problem, as Go's does:
//! `template: NAME:LINE:COL: executing "NAME" at <NODE>: MESSAGE`.

use super::funcs::{self, Func};
use super::gofmt;
use super::model::{self, Host, Method, Sig, Ty};
use super::parser::{Arg, Branch, CommandNode, ListNode, Node, NumberNode, PipeNode, Set};
use super::value::{EntryVal, PtrType, Str, Value};

/// An execution error, formatted as Go formats it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecError(pub String);

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How deep execution may nest: `{{template}}` calls, as in Go (which allows 100000), and
/// here also the control structures and parenthesized pipelines inside them, so a recursive
/// template whose body nests deeply is bounded too (the stack grows on the heap as needed,
/// [`super::RED_ZONE`]; this bounds the memory).
pub const MAX_DEPTH: usize = 10000;

type Res<T> = Result<T, ExecError>;

/// What a walk over a list ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// The node being evaluated, for error messages.
#[derive(Clone, Copy)]
enum At<'a> {
    Arg(&'a Arg),
    Cmd(&'a CommandNode),
    Pipe(&'a PipeNode),
    Node(&'a Node),
}

impl At<'_> {
    fn pos(&self) -> usize {
        match self {
            At::Arg(a) => a.pos(),
            At::Cmd(c) => c.pos,
            At::Pipe(p) => p.pos,
            At::Node(n) => n.pos(),
        }
    }

    fn context(&self) -> String {
        match self {
            At::Arg(a) => a.to_string(),
            At::Cmd(c) => c.to_string(),
            At::Pipe(p) => p.to_string(),
            At::Node(n) => n.to_string(),
        }
    }
}

/// What is called: a function, or a method bound to its receiver.
enum Callee<'a> {
    Func(Func),
    Method(Value<'a>, Method),
}

pub struct Exec<'e, 'a> {
    set: &'a Set,
    /// The whole template text and the top-level name, for error locations.
    text: &'a str,
    parse_name: &'a str,
    /// The template being executed.
    name: &'a str,
    host: &'e dyn Host<'a>,
    out: &'e mut String,
    vars: Vec<(&'a str, Value<'a>)>,
    at: Option<At<'a>>,
    depth: usize,
}

impl<'e, 'a> Exec<'e, 'a> {
    pub fn new(
        set: &'a Set,
        text: &'a str,
        parse_name: &'a str,
        host: &'e dyn Host<'a>,
        out: &'e mut String,
    ) -> Self {
        Exec {
            set,
            text,
            parse_name,
            name: parse_name,
            host,
            out,
            vars: Vec::new(),
            at: None,
            depth: 0,
        }
    }

    /// Executes the template `name` of the set with `data` as dot.
    pub fn run(&mut self, name: &'a str, data: Value<'a>) -> Res<()> {
        let Some((key, root)) = self.set.get_key_value(name) else {
            return Err(ExecError(format!(
                "template: no template {} associated with template {}",
                gofmt::quote(name, false),
                gofmt::quote(self.parse_name, false)
            )));
        };
        self.name = key;
        self.vars = vec![("$", data.clone())];
        self.walk(&data, root).map(|_| ())
    }

    fn errorf(&self, message: impl std::fmt::Display) -> ExecError {
        let name = self.name;
        match &self.at {
            None => ExecError(format!("template: {name}: {message}")),
            Some(at) => {
                let pos = at.pos().min(self.text.len());
                let before = &self.text[..pos];
                let line = 1 + before.bytes().filter(|&b| b == b'\n').count();
                let col = match before.rfind('\n') {
                    Some(nl) => pos - (nl + 1),
                    None => pos,
                };
                ExecError(format!(
                    "template: {}:{line}:{col}: executing {} at <{}>: {message}",
                    self.parse_name,
                    gofmt::quote(name, false),
                    at.context()
                ))
            }
        }
    }

    fn at(&mut self, at: At<'a>) {
        self.at = Some(at);
    }

    /// Runs `f` one level deeper (see [`MAX_DEPTH`]), on a grown stack when needed.
    fn deeper<T>(&mut self, f: impl FnOnce(&mut Self) -> Res<T>) -> Res<T> {
        if self.depth == MAX_DEPTH {
            return Err(self.errorf(format!("exceeded maximum template depth ({MAX_DEPTH})")));
        }
        self.depth += 1;
        let result = stacker::maybe_grow(super::RED_ZONE, super::STACK_STEP, || f(self));
        self.depth -= 1;
        result
    }

    fn walk(&mut self, dot: &Value<'a>, list: &'a ListNode) -> Res<Flow> {
        for node in &list.nodes {
            let flow = self.walk_node(dot, node)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_node(&mut self, dot: &Value<'a>, node: &'a Node) -> Res<Flow> {
        self.at(At::Node(node));
        match node {
            Node::Text { text, .. } => self.out.push_str(text),
            Node::Action { pipe, .. } => {
                // Variables declared here persist until the enclosing {{end}}.
                let value = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.at(At::Node(node));
                    match value {
                        Value::Invalid => self.out.push_str("<no value>"),
                        v => gofmt::print_value(self.out, &v, 0),
                    }
                }
            }
            Node::If(b) => return self.deeper(|this| this.walk_if_or_with(false, dot, b)),
            Node::With(b) => return self.deeper(|this| this.walk_if_or_with(true, dot, b)),
            Node::Range(b) => return self.deeper(|this| this.walk_range(dot, node, b)),
            Node::Template { name, pipe, .. } => self.walk_template(dot, node, name, pipe)?,
            Node::Break { .. } => return Ok(Flow::Break),
            Node::Continue { .. } => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Value<'a>, b: &'a Branch) -> Res<Flow> {
        let mark = self.vars.len();
        let value = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if value.truth() {
            if with {
                self.walk(&value, &b.list)?
            } else {
                self.walk(dot, &b.list)?
            }
        } else if let Some(else_list) = &b.else_list {
            self.walk(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Value<'a>, node: &'a Node, b: &'a Branch) -> Res<Flow> {
        self.at(At::Node(node));
        let mark = self.vars.len();
        let value = self.eval_pipeline(dot, &b.pipe)?;
        let body = self.vars.len();
        let decl = &b.pipe.decl;
        let mut ran = false;
        let mut one = |this: &mut Self, index: Value<'a>, elem: Value<'a>| -> Res<Flow> {
            ran = true;
            if !decl.is_empty() {
                if b.pipe.is_assign {
                    let first = if decl.len() > 1 { &index } else { &elem };
                    this.set_var(&decl[0].1, first.clone())?;
                } else {
                    this.vars[body - 1].1 = elem.clone();
                }
            }
            if decl.len() > 1 {
                if b.pipe.is_assign {
                    this.set_var(&decl[1].1, elem.clone())?;
                } else {
                    this.vars[body - 2].1 = index;
                }
            }
            let flow = this.walk(&elem, &b.list)?;
            this.vars.truncate(body);
            Ok(flow)
        };
        match &value {
            Value::List(list) => {
                for i in 0..list.len() {
                    if one(self, Value::Int(i as i64), list.get(i))? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Map(map) => {
                let pairs: Vec<(String, String)> = map
                    .map()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (k, v) in pairs {
                    if one(self, Value::string(&k), Value::string(&v))? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Int(n) => {
                if decl.len() > 1 {
                    self.at(At::Node(node));
                    return Err(self.errorf(format!(
                        "can't use {n} to iterate over more than one variable"
                    )));
                }
                for i in 0..(*n).max(0) {
                    if one(self, Value::Int(i), Value::Int(i))? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Invalid | Value::Nil => {}
            other => {
                let mut shown = String::new();
                gofmt::print_value(&mut shown, other, 0);
                return Err(self.errorf(format!("range can't iterate over {shown}")));
            }
        }
        if !ran && let Some(else_list) = &b.else_list {
            self.vars.truncate(body);
            self.walk(dot, else_list)?;
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn walk_template(
        &mut self,
        dot: &Value<'a>,
        node: &'a Node,
        name: &'a str,
        pipe: &'a Option<PipeNode>,
    ) -> Res<()> {
        self.at(At::Node(node));
        let Some((key, root)) = self.set.get_key_value(name) else {
            return Err(self.errorf(format!(
                "template {} not defined",
                gofmt::quote(name, false)
            )));
        };
        if self.depth == MAX_DEPTH {
            return Err(self.errorf(format!("exceeded maximum template depth ({MAX_DEPTH})")));
        }
        let new_dot = match pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Invalid,
        };
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$", new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.name, key);
        let result = self.deeper(|this| this.walk(&new_dot, root));
        self.name = saved_name;
        self.vars = saved_vars;
        result.map(|_| ())
    }

    fn var_value(&self, name: &str) -> Res<Value<'a>> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.errorf(format!("undefined variable: {name}"))),
        }
    }

    fn set_var(&mut self, name: &str, value: Value<'a>) -> Res<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                *v = value;
                Ok(())
            }
            None => Err(self.errorf(format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value<'a>, pipe: &'a PipeNode) -> Res<Value<'a>> {
        self.at(At::Pipe(pipe));
        let mut value: Option<Value<'a>> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or_default();
        for (_, name) in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone())?;
            } else {
                self.vars.push((name.as_str(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &'a [Arg], last: &Option<Value<'a>>) -> Res<()> {
        if args.len() > 1 || last.is_some() {
            return Err(self.errorf(format!("can't give argument to non-function {}", args[0])));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value<'a>,
        cmd: &'a CommandNode,
        last: Option<Value<'a>>,
    ) -> Res<Value<'a>> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                return self.eval_field_node(dot, first, idents, Some(&cmd.args), last);
            }
            Arg::Chain { .. } => return self.eval_chain_node(dot, first, Some(&cmd.args), last),
            Arg::Identifier { name, .. } => {
                return self.eval_function(dot, first, name, At::Cmd(cmd), Some(&cmd.args), last);
            }
            Arg::Pipe(pipe) => {
                self.not_a_function(&cmd.args, &last)?;
                return self.deeper(|this| this.eval_pipeline(dot, pipe));
            }
            Arg::Variable { idents, .. } => {
                return self.eval_variable_node(dot, first, idents, Some(&cmd.args), last);
            }
            _ => {}
        }
        self.at(At::Arg(first));
        self.not_a_function(&cmd.args, &last)?;
        match first {
            Arg::Bool { value, .. } => Ok(Value::Bool(*value)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Err(self.errorf("nil is not a command")),
            Arg::Number { number, .. } => self.ideal_constant(number),
            Arg::String { text, .. } => Ok(Value::Str(Str::Borrowed(text))),
            _ => Err(self.errorf(format!(
                "can't evaluate command {}",
                gofmt::quote(&first.to_string(), false)
            ))),
        }
    }

    /// A number where no type is wanted: Go's rules pick int or float64 from its syntax.
    fn ideal_constant(&self, n: &NumberNode) -> Res<Value<'a>> {
        let hex_int = n.text.len() > 2
            && (n.text.starts_with("0x") || n.text.starts_with("0X"))
            && !n.text.contains(['p', 'P']);
        let rune_int = n.text.starts_with('\'');
        if n.is_float && !hex_int && !rune_int && n.text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Value::Float(n.float));
        }
        if n.is_int {
            return Ok(Value::Int(n.int));
        }
        if n.is_uint {
            return Err(self.errorf(format!("{} overflows int", n.text)));
        }
        Ok(Value::Invalid)
    }

    fn eval_field_node(
        &mut self,
        dot: &Value<'a>,
        node: &'a Arg,
        idents: &'a [String],
        args: Option<&'a [Arg]>,
        last: Option<Value<'a>>,
    ) -> Res<Value<'a>> {
        self.at(At::Arg(node));
        self.eval_field_chain(dot, dot.clone(), node, idents, args, last)
    }

    fn eval_chain_node(
        &mut self,
        dot: &Value<'a>,
        chain: &'a Arg,
        args: Option<&'a [Arg]>,
        last: Option<Value<'a>>,
    ) -> Res<Value<'a>> {
        self.at(At::Arg(chain));
        let Arg::Chain { node, fields, .. } = chain else {
            return Err(self.errorf("internal error: not a chain"));
        };
        if let Arg::Nil { .. } = node.as_ref() {
            return Err(self.errorf(format!("indirection through explicit nil in {chain}")));
        }
        let base = self.eval_arg(dot, None, node)?;
        self.eval_field_chain(dot, base, chain, fields, args, last)
    }

    fn eval_variable_node(
        &mut self,
        dot: &Value<'a>,
        node: &'a Arg,
        idents: &'a [String],
        args: Option<&'a [Arg]>,
        last: Option<Value<'a>>,
    ) -> Res<Value<'a>> {
        self.at(At::Arg(node));
        let value = self.var_value(&idents[0])?;
        if idents.len() == 1 {
            if let Some(args) = args {
                self.not_a_function(args, &last)?;
            } else if last.is_some() {
                return Err(self.errorf(format!("can't give argument to non-function {node}")));
            }
            return Ok(value);
        }
        self.eval_field_chain(dot, value, node, &idents[1..], args, last)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value<'a>,
        mut receiver: Value<'a>,
        node: &'a Arg,
        idents: &'a [String],
        args: Option<&'a [Arg]>,
        last: Option<Value<'a>>,
    ) -> Res<Value<'a>> {
        let n = idents.len();
        for ident in &idents[..n - 1] {
            receiver = self.eval_field(dot, ident, node, None, None, receiver)?;
        }
        self.eval_field(dot, &idents[n - 1], node, args, last, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Value<'a>,
        name: &'a str,
        node: &'a Arg,
        args: Option<&'a [Arg]>,
        last: Option<Value<'a>>,
        receiver: Value<'a>,
    ) -> Res<Value<'a>> {
        if !receiver.is_valid() {
            return Ok(Value::Invalid);
        }
        let typ = receiver.type_name();
        if let Value::Nil = receiver {
            return Err(self.errorf(format!("nil pointer evaluating interface {{}}.{name}")));
        }
        if let Some((method, sig)) = model::method(&receiver, name) {
            return self.eval_call(
                dot,
                Callee::Method(receiver, method),
                sig,
                false,
                At::Arg(node),
                name,
                args,
                last,
            );
        }
        let has_args = args.is_some_and(|a| a.len() > 1) || last.is_some();
        if let Value::Map(map) = &receiver {
            // A map's "field" is the value under that key (none when absent).
            if has_args {
                return Err(self.errorf(format!("{name} is not a method but has arguments")));
            }
            return Ok(map
                .map()
                .and_then(|m| m.get(name))
                .map_or(Value::Invalid, |v| Value::string(v)));
        }
        if let Some(value) = model::field(&receiver, name) {
            if has_args {
                return Err(self.errorf(format!(
                    "{name} has arguments but cannot be invoked as function"
                )));
            }
            return Ok(value);
        }
        if let Value::NilPtr(ptr) = receiver
            && model::has_field(ptr, name)
        {
            return Err(self.errorf(format!("nil pointer evaluating {typ}.{name}")));
        }
        Err(self.errorf(format!("can't evaluate field {name} in type {typ}")))
    }

    fn eval_function(
        &mut self,
        dot: &Value<'a>,
        ident: &'a Arg,
        name: &'a str,
        node: At<'a>,
        args: Option<&'a [Arg]>,
        last: Option<Value<'a>>,
    ) -> Res<Value<'a>> {
        self.at(At::Arg(ident));
        let Some((func, sig, builtin)) = funcs::lookup(name) else {
            return Err(self.errorf(format!(
                "{} is not a defined function",
                gofmt::quote(name, false)
            )));
        };
        self.eval_call(
            dot,
            Callee::Func(func),
            sig,
            builtin,
            node,
            name,
            args,
            last,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_call(
        &mut self,
        dot: &Value<'a>,
        callee: Callee<'a>,
        sig: Sig,
        builtin: bool,
        node: At<'a>,
        name: &str,
        args: Option<&'a [Arg]>,
        last: Option<Value<'a>>,
    ) -> Res<Value<'a>> {
        let args: &'a [Arg] = match args {
            Some(args) => &args[1..],
            None => &[],
        };
        let num_in = args.len() + usize::from(last.is_some());
        let mut num_fixed = args.len();
        if sig.variadic.is_some() {
            num_fixed = sig.params.len();
            if num_in < num_fixed {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    sig.params.len(),
                    args.len()
                )));
            }
        } else if num_in != sig.num_in() {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want {} got {num_in}",
                sig.num_in()
            )));
        }
        if builtin && (name == "and" || name == "or") {
            let or = name == "or";
            let mut value = Value::Invalid;
            for arg in args {
                value = self.eval_arg(dot, Some(Ty::RValue), arg)?;
                if value.truth() == or {
                    return Ok(value);
                }
            }
            if let Some(last) = last {
                value = self.validate_type(last, Some(Ty::RValue))?;
            }
            return Ok(value);
        }
        let mut argv = Vec::with_capacity(num_in);
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            argv.push(self.eval_arg(dot, Some(sig.params[i]), &args[i])?);
            i += 1;
        }
        if let Some(rest) = sig.variadic {
            for arg in &args[i..] {
                argv.push(self.eval_arg(dot, Some(rest), arg)?);
            }
        }
        if let Some(last) = last {
            let ty = match sig.variadic {
                Some(rest) if num_in > num_fixed => rest,
                Some(_) => sig.params[num_in - 1],
                None => sig.params[sig.params.len() - 1],
            };
            argv.push(self.validate_type(last, Some(ty))?);
        }
        let result = match callee {
            Callee::Func(func) => funcs::call(func, argv, self.host),
            Callee::Method(receiver, method) => model::call(self.host, &receiver, method, &argv),
        };
        result.map_err(|e| {
            self.at(node);
            self.errorf(format!("error calling {name}: {e}"))
        })
    }

    fn eval_arg(&mut self, dot: &Value<'a>, ty: Option<Ty>, arg: &'a Arg) -> Res<Value<'a>> {
        self.at(At::Arg(arg));
        match arg {
            Arg::Dot { .. } => return self.validate_type(dot.clone(), ty),
            Arg::Nil { .. } => {
                return match ty {
                    Some(t) if can_be_nil(t) => Ok(zero(t)),
                    _ => Err(self.errorf(format!(
                        "cannot assign nil to {}",
                        ty.map_or("<nil>", Ty::name)
                    ))),
                };
            }
            Arg::Field { idents, .. } => {
                let v = self.eval_field_node(dot, arg, idents, None, None)?;
                return self.validate_type(v, ty);
            }
            Arg::Variable { idents, .. } => {
                let v = self.eval_variable_node(dot, arg, idents, None, None)?;
                return self.validate_type(v, ty);
            }
            Arg::Pipe(pipe) => {
                let v = self.deeper(|this| this.eval_pipeline(dot, pipe))?;
                return self.validate_type(v, ty);
            }
            Arg::Identifier { name, .. } => {
                let v = self.eval_function(dot, arg, name, At::Arg(arg), None, None)?;
                return self.validate_type(v, ty);
            }
            Arg::Chain { .. } => {
                let v = self.eval_chain_node(dot, arg, None, None)?;
                return self.validate_type(v, ty);
            }
            _ => {}
        }
        match ty {
            Some(Ty::Bool) => match arg {
                Arg::Bool { value, .. } => Ok(Value::Bool(*value)),
                _ => Err(self.errorf(format!("expected bool; found {arg}"))),
            },
            Some(Ty::Int) => match arg {
                Arg::Number { number, .. } if number.is_int => Ok(Value::Int(number.int)),
                _ => Err(self.errorf(format!("expected integer; found {arg}"))),
            },
            Some(Ty::Str) => match arg {
                Arg::String { text, .. } => Ok(Value::Str(Str::Borrowed(text))),
                _ => Err(self.errorf(format!("expected string; found {arg}"))),
            },
            Some(Ty::Any | Ty::RValue) => match arg {
                Arg::Bool { value, .. } => Ok(Value::Bool(*value)),
                Arg::Number { number, .. } => self.ideal_constant(number),
                Arg::String { text, .. } => Ok(Value::Str(Str::Borrowed(text))),
                _ => Err(self.errorf(format!(
                    "can't handle assignment of {arg} to empty interface argument"
                ))),
            },
            Some(t @ (Ty::EntryPtr | Ty::Entry)) => {
                Err(self.errorf(format!("can't handle {arg} for arg of type {}", t.name())))
            }
            None => Err(self.errorf(format!("can't handle {arg} for arg of type <nil>"))),
        }
    }

    /// Go's `validateType`: the value, checked (and dereferenced or addressed once) against
    /// the parameter type.
    fn validate_type(&self, value: Value<'a>, ty: Option<Ty>) -> Res<Value<'a>> {
        let Some(ty) = ty else {
            return Ok(value);
        };
        if matches!(value, Value::Invalid | Value::Nil) {
            if can_be_nil(ty) {
                return Ok(if matches!(value, Value::Nil) && ty != Ty::EntryPtr {
                    value
                } else {
                    zero(ty)
                });
            }
            return Err(self.errorf(format!("invalid value; expected {}", ty.name())));
        }
        let ok = match (ty, &value) {
            (Ty::Any | Ty::RValue, _) => true,
            (Ty::Str, Value::Str(_)) | (Ty::Bool, Value::Bool(_)) | (Ty::Int, Value::Int(_)) => {
                true
            }
            (Ty::EntryPtr, Value::Entry(e)) if e.ptr => true,
            (Ty::EntryPtr, Value::NilPtr(PtrType::Entry)) => true,
            (Ty::EntryPtr, Value::Entry(e)) if e.addressable => {
                return Ok(Value::Entry(EntryVal {
                    entry: e.entry.clone(),
                    ptr: true,
                    addressable: false,
                }));
            }
            (Ty::Entry, Value::Entry(e)) if !e.ptr => true,
            (Ty::Entry, Value::Entry(e)) => {
                return Ok(Value::Entry(EntryVal {
                    entry: e.entry.clone(),
                    ptr: false,
                    addressable: true,
                }));
            }
            (Ty::Entry, Value::NilPtr(PtrType::Entry)) => {
                return Err(
                    self.errorf(format!("dereference of nil pointer of type {}", ty.name()))
                );
            }
            _ => false,
        };
        if ok {
            Ok(value)
        } else {
            Err(self.errorf(format!(
                "wrong type for value; expected {}; got {}",
                ty.name(),
                value.type_name()
            )))
        }
    }
}

fn can_be_nil(ty: Ty) -> bool {
    matches!(ty, Ty::Any | Ty::RValue | Ty::EntryPtr)
}

fn zero<'a>(ty: Ty) -> Value<'a> {
    match ty {
        Ty::EntryPtr => Value::NilPtr(PtrType::Entry),
        Ty::Any => Value::Nil,
        _ => Value::Invalid,
    }
}
