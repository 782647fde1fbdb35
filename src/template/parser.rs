//! The parser of Go's `text/template`: tokens to a tree of nodes, per template of a set.
//!
//! Invariants: the grammar and the checks are Go's (`{{define}}` only at the top level,
//! `{{break}}`/`{{continue}}` only inside `{{range}}`, variables defined before use, every
//! function name known at parse time, only the first command of a pipeline may be a
//! literal); errors read as Go's, `template: NAME:LINE: message`, with LINE the line of the
//! last token read. Every node keeps its byte offset, for execution errors.

use std::collections::HashMap;
use std::fmt;

use super::lexer::{Kind, Token, lex};
use super::{RED_ZONE, STACK_STEP};

pub type Pos = usize;

/// A parse error, already formatted as Go formats it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListNode {
    pub pos: Pos,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
pub enum Node {
    Text {
        pos: Pos,
        text: String,
    },
    Action {
        pos: Pos,
        pipe: PipeNode,
    },
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: Pos,
        name: String,
        pipe: Option<PipeNode>,
    },
    Break {
        pos: Pos,
    },
    Continue {
        pos: Pos,
    },
}

/// `{{if}}`, `{{range}}` and `{{with}}`.
#[derive(Debug, Clone)]
pub struct Branch {
    pub pos: Pos,
    pub pipe: PipeNode,
    pub list: ListNode,
    pub else_list: Option<ListNode>,
}

#[derive(Debug, Clone)]
pub struct PipeNode {
    pub pos: Pos,
    /// `$x = ...` rather than `$x := ...`.
    pub is_assign: bool,
    /// Declared variables (with their positions).
    pub decl: Vec<(Pos, String)>,
    pub cmds: Vec<CommandNode>,
}

#[derive(Debug, Clone)]
pub struct CommandNode {
    pub pos: Pos,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub struct NumberNode {
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub int: i64,
    pub float: f64,
    pub text: String,
}

/// An operand of a command.
#[derive(Debug, Clone)]
pub enum Arg {
    /// `.A.B`
    Field {
        pos: Pos,
        idents: Vec<String>,
    },
    /// `$x.A` (`idents[0]` is `$x`)
    Variable {
        pos: Pos,
        idents: Vec<String>,
    },
    /// `(pipeline).A.B`
    Chain {
        pos: Pos,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    /// A function name.
    Identifier {
        pos: Pos,
        name: String,
    },
    Dot {
        pos: Pos,
    },
    Nil {
        pos: Pos,
    },
    Bool {
        pos: Pos,
        value: bool,
    },
    Number {
        pos: Pos,
        number: NumberNode,
    },
    String {
        pos: Pos,
        quoted: String,
        text: String,
    },
    Pipe(Box<PipeNode>),
}

impl Arg {
    pub fn pos(&self) -> Pos {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::String { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Arg {
    /// Go's `Node.String()`, shown in execution errors (`at <.Field>`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for ident in idents {
                    write!(f, ".{ident}")?;
                }
                Ok(())
            }
            Arg::Variable { idents, .. } => f.write_str(&idents.join(".")),
            Arg::Chain { node, fields, .. } => {
                match node.as_ref() {
                    Arg::Pipe(p) => write!(f, "({p})")?,
                    other => write!(f, "{other}")?,
                }
                for field in fields {
                    write!(f, ".{field}")?;
                }
                Ok(())
            }
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Dot { .. } => f.write_str("."),
            Arg::Nil { .. } => f.write_str("nil"),
            Arg::Bool { value, .. } => write!(f, "{value}"),
            Arg::Number { number, .. } => f.write_str(&number.text),
            Arg::String { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for CommandNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match arg {
                Arg::Pipe(p) => write!(f, "({p})")?,
                other => write!(f, "{other}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for PipeNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        stacker::maybe_grow(RED_ZONE, STACK_STEP, || self.fmt_pipe(f))
    }
}

impl PipeNode {
    fn fmt_pipe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            for (i, (_, name)) in self.decl.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(name)?;
            }
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ListNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for node in &self.nodes {
            write!(f, "{node}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let branch = |f: &mut fmt::Formatter<'_>, name: &str, b: &Branch| {
            write!(f, "{{{{{name} {}}}}}{}", b.pipe, b.list)?;
            if let Some(e) = &b.else_list {
                write!(f, "{{{{else}}}}{e}")?;
            }
            f.write_str("{{end}}")
        };
        match self {
            Node::Text { text, .. } => f.write_str(text),
            Node::Action { pipe, .. } => write!(f, "{{{{{pipe}}}}}"),
            Node::If(b) => branch(f, "if", b),
            Node::Range(b) => branch(f, "range", b),
            Node::With(b) => branch(f, "with", b),
            Node::Template { name, pipe, .. } => match pipe {
                Some(p) => write!(
                    f,
                    "{{{{template {} {p}}}}}",
                    super::gofmt::quote(name, false)
                ),
                None => write!(f, "{{{{template {}}}}}", super::gofmt::quote(name, false)),
            },
            Node::Break { .. } => f.write_str("{{break}}"),
            Node::Continue { .. } => f.write_str("{{continue}}"),
        }
    }
}

impl Node {
    pub fn pos(&self) -> Pos {
        match self {
            Node::Text { pos, .. }
            | Node::Action { pos, .. }
            | Node::Template { pos, .. }
            | Node::Break { pos }
            | Node::Continue { pos } => *pos,
            Node::If(b) | Node::Range(b) | Node::With(b) => b.pos,
        }
    }
}

/// What a nested list ended with.
enum Terminator {
    End,
    Else { pos: Pos },
}

/// How deeply control structures (`if`/`with`/`range`/`block` bodies, `else if` links) and
/// parenthesized pipelines may nest, together. Go caps parentheses alone at 10000 and
/// leaves control nesting to its growable stacks; keg's trees are walked (and dropped) by
/// native recursion, so one lower cap on both keeps every template within a thread's stack.
/// Exceeding it is Go's error, `max expression depth exceeded`.
pub const MAX_PARSE_DEPTH: usize = 1000;

/// The parsed set: the named templates (the top-level one under its own name).
pub type Set = HashMap<String, ListNode>;

struct Parser<'t, 'f> {
    name: &'t str,
    text: &'t str,
    tokens: Vec<Token<'t>>,
    cursor: usize,
    /// The furthest token read, whose line Go's errors name.
    last: usize,
    vars: Vec<String>,
    range_depth: usize,
    /// How many control structures and parenthesized pipelines enclose the parse point.
    depth: usize,
    /// Line of the `{{` of the action being parsed (0 outside actions).
    action_line: usize,
    has_function: &'f dyn Fn(&str) -> bool,
    set: Set,
}

type PResult<T> = Result<T, ParseError>;

/// Parses `text` as the template `name` (plus its `{{define}}`s and `{{block}}`s).
pub fn parse(name: &str, text: &str, has_function: &dyn Fn(&str) -> bool) -> PResult<Set> {
    let mut p = Parser {
        name,
        text,
        tokens: lex(text),
        cursor: 0,
        last: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
        action_line: 0,
        has_function,
        set: Set::new(),
    };
    let root = p.parse_top()?;
    p.add(name.to_string(), root)?;
    Ok(p.set)
}

impl<'t> Parser<'t, '_> {
    fn line_of(&self, pos: Pos) -> usize {
        1 + self.text[..pos.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
    }

    fn errorf(&self, message: impl fmt::Display) -> ParseError {
        let line = self
            .tokens
            .get(self.last)
            .map_or(1, |token| self.line_of(token.pos));
        ParseError(format!("template: {}:{line}: {message}", self.name))
    }

    fn next(&mut self) -> Token<'t> {
        // The last token (EOF or an error) repeats forever.
        let i = self.cursor.min(self.tokens.len() - 1);
        self.last = self.last.max(i);
        self.cursor = i + 1;
        self.tokens[i].clone()
    }

    fn backup(&mut self) {
        self.cursor -= 1;
    }

    fn peek(&mut self) -> Token<'t> {
        let token = self.next();
        self.backup();
        token
    }

    fn next_non_space(&mut self) -> Token<'t> {
        loop {
            let token = self.next();
            if token.kind != Kind::Space {
                return token;
            }
        }
    }

    /// The next non-space token, left unread (the spaces before it are consumed, as Go's
    /// `peekNonSpace` does).
    fn peek_non_space(&mut self) -> Token<'t> {
        let token = self.next_non_space();
        self.backup();
        token
    }

    fn unexpected(&self, token: &Token<'t>, context: &str) -> ParseError {
        if token.kind == Kind::Error {
            let line = self.line_of(token.pos);
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != line {
                extra = format!(" in action started at {}:{}", self.name, self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    fn expect(&mut self, kind: Kind, context: &str) -> PResult<Token<'t>> {
        let token = self.next_non_space();
        if token.kind != kind {
            return Err(self.unexpected(&token, context));
        }
        Ok(token)
    }

    fn add(&mut self, name: String, root: ListNode) -> PResult<()> {
        match self.set.get(&name) {
            Some(existing) if !is_empty(existing) && !is_empty(&root) => Err(self.errorf(format!(
                "template: multiple definition of template {}",
                quote(&name)
            ))),
            Some(existing) if !is_empty(existing) => Ok(()),
            _ => {
                self.set.insert(name, root);
                Ok(())
            }
        }
    }

    fn parse_top(&mut self) -> PResult<ListNode> {
        let mut root = ListNode {
            pos: self.peek().pos,
            nodes: Vec::new(),
        };
        while self.peek().kind != Kind::Eof {
            if self.peek().kind == Kind::LeftDelim {
                let save = self.cursor;
                self.next();
                if self.next_non_space().kind == Kind::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.cursor = save;
            }
            match self.text_or_action()? {
                Item::Node(n) => root.nodes.push(n),
                Item::End(_) => return Err(self.errorf("unexpected {{end}}")),
                Item::Else(_) => return Err(self.errorf("unexpected {{else}}")),
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space();
        if token.kind != Kind::String && token.kind != Kind::RawString {
            return Err(self.unexpected(&token, CONTEXT));
        }
        let name = unquote(&token.val).map_err(|e| self.errorf(e))?;
        self.expect(Kind::RightDelim, CONTEXT)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        if let Terminator::Else { .. } = end {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {CONTEXT}")));
        }
        self.add(name, list)
    }

    /// Nodes up to `{{end}}` or `{{else}}`.
    fn item_list(&mut self) -> PResult<(ListNode, Terminator)> {
        let mut list = ListNode {
            pos: self.peek_non_space().pos,
            nodes: Vec::new(),
        };
        while self.peek_non_space().kind != Kind::Eof {
            match self.text_or_action()? {
                Item::Node(n) => list.nodes.push(n),
                Item::End(_) => return Ok((list, Terminator::End)),
                Item::Else(pos) => return Ok((list, Terminator::Else { pos })),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Item> {
        let token = self.next_non_space();
        match token.kind {
            Kind::Text => Ok(Item::Node(Node::Text {
                pos: token.pos,
                text: token.val.into_owned(),
            })),
            Kind::LeftDelim => {
                self.action_line = self.line_of(token.pos);
                let result = self.action();
                self.action_line = 0;
                result
            }
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> PResult<Item> {
        let token = self.next_non_space();
        match token.kind {
            Kind::Block => return self.block_control().map(Item::Node),
            Kind::Break | Kind::Continue => {
                let name = if token.kind == Kind::Break {
                    "break"
                } else {
                    "continue"
                };
                let next = self.next_non_space();
                if next.kind != Kind::RightDelim {
                    return Err(self.unexpected(&next, &format!("{{{{{name}}}}}")));
                }
                if self.range_depth == 0 {
                    return Err(self.errorf(format!("{{{{{name}}}}} outside {{{{range}}}}")));
                }
                return Ok(Item::Node(if token.kind == Kind::Break {
                    Node::Break { pos: token.pos }
                } else {
                    Node::Continue { pos: token.pos }
                }));
            }
            Kind::Else => {
                let peek = self.peek_non_space();
                if peek.kind == Kind::If || peek.kind == Kind::With {
                    return Ok(Item::Else(peek.pos));
                }
                let t = self.expect(Kind::RightDelim, "else")?;
                return Ok(Item::Else(t.pos));
            }
            Kind::End => {
                let t = self.expect(Kind::RightDelim, "end")?;
                return Ok(Item::End(t.pos));
            }
            Kind::If => return self.control("if").map(|b| Item::Node(Node::If(b))),
            Kind::Range => return self.control("range").map(|b| Item::Node(Node::Range(b))),
            Kind::Template => return self.template_control().map(Item::Node),
            Kind::With => return self.control("with").map(|b| Item::Node(Node::With(b))),
            _ => {}
        }
        self.backup();
        let pos = self.peek().pos;
        let pipe = self.pipeline("command", Kind::RightDelim)?;
        Ok(Item::Node(Node::Action { pos, pipe }))
    }

    /// Parses one more level of nesting with `f` (see [`MAX_PARSE_DEPTH`]).
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_PARSE_DEPTH {
            return Err(self.errorf("max expression depth exceeded"));
        }
        self.depth += 1;
        let result = stacker::maybe_grow(RED_ZONE, STACK_STEP, || f(self));
        self.depth -= 1;
        result
    }

    fn control(&mut self, context: &str) -> PResult<Branch> {
        self.nested(|p| {
            let vars = p.vars.len();
            let result = p.control_inner(context);
            p.vars.truncate(vars);
            result
        })
    }

    fn control_inner(&mut self, context: &str) -> PResult<Branch> {
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = listed?;
        let else_list = match next {
            Terminator::End => None,
            Terminator::Else { pos } => {
                // `{{else if}}` and `{{else with}}` nest the next branch in the else list.
                let peek = self.peek();
                if context == "if" && peek.kind == Kind::If {
                    self.next();
                    let nested = self.control("if")?;
                    Some(ListNode {
                        pos,
                        nodes: vec![Node::If(nested)],
                    })
                } else if context == "with" && peek.kind == Kind::With {
                    self.next();
                    let nested = self.control("with")?;
                    Some(ListNode {
                        pos,
                        nodes: vec![Node::With(nested)],
                    })
                } else {
                    let (list, next) = self.item_list()?;
                    if let Terminator::Else { .. } = next {
                        return Err(self.errorf("expected end; found {{else}}"));
                    }
                    Some(list)
                }
            }
        };
        Ok(Branch {
            pos: pipe.pos,
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, token: &Token<'t>, context: &str) -> PResult<String> {
        match token.kind {
            Kind::String | Kind::RawString => unquote(&token.val).map_err(|e| self.errorf(e)),
            _ => Err(self.unexpected(token, context)),
        }
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, Kind::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_depth = std::mem::take(&mut self.range_depth);
        let listed = self.nested(Self::item_list);
        self.vars = saved_vars;
        self.range_depth = saved_depth;
        let (list, end) = listed?;
        if let Terminator::Else { .. } = end {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {CONTEXT}")));
        }
        self.add(name.clone(), list)?;
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = if self.next_non_space().kind != Kind::RightDelim {
            self.backup();
            Some(self.pipeline(CONTEXT, Kind::RightDelim)?)
        } else {
            None
        };
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }

    fn pipeline(&mut self, context: &str, end: Kind) -> PResult<PipeNode> {
        let token = self.peek_non_space();
        let mut pipe = PipeNode {
            pos: token.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations or assignments: `$x :=`, `$x =`, `$i, $e :=` (range only).
        loop {
            let v = self.peek_non_space();
            if v.kind != Kind::Variable {
                break;
            }
            let save = self.cursor;
            self.next_non_space();
            let next = self.peek_non_space();
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    pipe.is_assign = next.kind == Kind::Assign;
                    self.next_non_space();
                    pipe.decl.push((v.pos, v.val.to_string()));
                    self.vars.push(v.val.to_string());
                    break;
                }
                Kind::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push((v.pos, v.val.to_string()));
                    self.vars.push(v.val.to_string());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().kind {
                            Kind::Variable | Kind::RightDelim | Kind::RightParen => continue,
                            _ => return Err(self.errorf("range can only initialize variables")),
                        }
                    }
                    return Err(self.errorf(format!("too many declarations in {context}")));
                }
                _ => {
                    self.cursor = save;
                    break;
                }
            }
        }
        loop {
            let token = self.next_non_space();
            match token.kind {
                k if k == end => {
                    if pipe.cmds.is_empty() {
                        return Err(self.errorf(format!("missing value for {context}")));
                    }
                    for (i, cmd) in pipe.cmds.iter().enumerate().skip(1) {
                        if matches!(
                            cmd.args[0],
                            Arg::Bool { .. }
                                | Arg::Dot { .. }
                                | Arg::Nil { .. }
                                | Arg::Number { .. }
                                | Arg::String { .. }
                        ) {
                            return Err(self.errorf(format!(
                                "non executable command in pipeline stage {}",
                                i + 1
                            )));
                        }
                    }
                    return Ok(pipe);
                }
                Kind::Bool
                | Kind::CharConstant
                | Kind::Complex
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    fn command(&mut self) -> PResult<CommandNode> {
        let mut cmd = CommandNode {
            pos: self.peek_non_space().pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                cmd.args.push(operand);
            }
            let token = self.next();
            match token.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Kind::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == Kind::Field {
            fields.push(self.next().val[1..].to_string());
        }
        Ok(Some(match node {
            // As in Go, the node takes the position of the first trailing field.
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable { mut idents, .. } => {
                idents.extend(fields);
                Arg::Variable { pos, idents }
            }
            Arg::Bool { .. }
            | Arg::String { .. }
            | Arg::Number { .. }
            | Arg::Nil { .. }
            | Arg::Dot { .. } => {
                return Err(self.errorf(format!(
                    "unexpected . after term {}",
                    quote(&node.to_string())
                )));
            }
            other => Arg::Chain {
                pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.kind {
            Kind::Identifier => {
                if !(self.has_function)(&token.val) {
                    return Err(self.errorf(format!("function {} not defined", quote(&token.val))));
                }
                Arg::Identifier {
                    pos,
                    name: token.val.into_owned(),
                }
            }
            Kind::Dot => Arg::Dot { pos },
            Kind::Nil => Arg::Nil { pos },
            Kind::Variable => {
                let idents: Vec<String> = token.val.split('.').map(str::to_string).collect();
                if !self.vars.iter().any(|v| *v == idents[0]) {
                    return Err(self.errorf(format!("undefined variable {}", quote(&idents[0]))));
                }
                Arg::Variable { pos, idents }
            }
            Kind::Field => Arg::Field {
                pos,
                idents: vec![token.val[1..].to_string()],
            },
            Kind::Bool => Arg::Bool {
                pos,
                value: token.val == "true",
            },
            Kind::CharConstant | Kind::Number => Arg::Number {
                pos,
                number: number(&token.val, token.kind == Kind::CharConstant)
                    .map_err(|e| self.errorf(e))?,
            },
            Kind::Complex => {
                return Err(self.errorf(format!(
                    "complex constant {} is not supported",
                    quote(&token.val)
                )));
            }
            Kind::LeftParen => {
                let pipe =
                    self.nested(|p| p.pipeline("parenthesized pipeline", Kind::RightParen))?;
                Arg::Pipe(Box::new(pipe))
            }
            Kind::String | Kind::RawString => {
                let text = unquote(&token.val).map_err(|e| self.errorf(e))?;
                Arg::String {
                    pos,
                    quoted: token.val.into_owned(),
                    text,
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

enum Item {
    Node(Node),
    End(#[allow(dead_code)] Pos),
    Else(Pos),
}

/// Whether a template body is nothing but white space (so a later definition may replace it).
fn is_empty(list: &ListNode) -> bool {
    list.nodes.iter().all(|node| match node {
        Node::Text { text, .. } => text.trim().is_empty(),
        _ => false,
    })
}

fn quote(s: &str) -> String {
    super::gofmt::quote(s, false)
}

/// Go's `strconv.Unquote` for `"..."` and `` `...` ``.
pub fn unquote(s: &str) -> Result<String, String> {
    if let Some(raw) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        return Ok(raw.replace('\r', ""));
    }
    let inner = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or("invalid syntax")?;
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (value, _) = unescape(&mut chars, '"')?;
        out.push_str(&value);
    }
    Ok(out)
}

/// One escape after a backslash; returns the text and the code point it denotes.
fn unescape(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    quote: char,
) -> Result<(String, u32), String> {
    let bad = || "invalid syntax".to_string();
    let c = chars.next().ok_or_else(bad)?;
    let simple = |ch: char| Ok((ch.to_string(), ch as u32));
    match c {
        'a' => simple('\u{7}'),
        'b' => simple('\u{8}'),
        'f' => simple('\u{c}'),
        'n' => simple('\n'),
        'r' => simple('\r'),
        't' => simple('\t'),
        'v' => simple('\u{b}'),
        '\\' => simple('\\'),
        c if c == quote => simple(c),
        'x' | 'u' | 'U' => {
            let n = match c {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let hex: String = (0..n).filter_map(|_| chars.next()).collect();
            if hex.len() != n {
                return Err(bad());
            }
            let v = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
            if c == 'x' {
                // A byte: only meaningful as part of UTF-8; keep ASCII, else a replacement.
                Ok((
                    char::from_u32(v)
                        .filter(|_| v < 0x80)
                        .unwrap_or('\u{fffd}')
                        .to_string(),
                    v,
                ))
            } else {
                let ch = char::from_u32(v).ok_or_else(bad)?;
                Ok((ch.to_string(), v))
            }
        }
        '0'..='7' => {
            let mut v = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                let d = chars.next().and_then(|d| d.to_digit(8)).ok_or_else(bad)?;
                v = v * 8 + d;
            }
            if v > 255 {
                return Err(bad());
            }
            Ok((
                char::from_u32(v)
                    .filter(|_| v < 0x80)
                    .unwrap_or('\u{fffd}')
                    .to_string(),
                v,
            ))
        }
        _ => Err(bad()),
    }
}

/// A number or character constant, as Go's `parse.newNumber` reads it.
pub fn number(text: &str, is_char: bool) -> Result<NumberNode, String> {
    let mut n = NumberNode {
        is_int: false,
        is_uint: false,
        is_float: false,
        int: 0,
        float: 0.0,
        text: text.to_string(),
    };
    if is_char {
        let inner = &text[1..];
        let mut chars = inner.chars().peekable();
        let c = chars.next().ok_or("invalid syntax")?;
        let code = if c == '\\' {
            unescape(&mut chars, '\'')?.1
        } else {
            c as u32
        };
        let tail: String = chars.collect();
        if tail != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        n.int = i64::from(code);
        n.is_int = true;
        n.is_uint = true;
        n.float = f64::from(code);
        n.is_float = true;
        return Ok(n);
    }
    if let Some(i) = parse_go_int(text) {
        n.is_int = true;
        n.int = i;
        n.is_uint = i >= 0;
    } else if parse_go_uint(text).is_some() {
        n.is_uint = true;
    }
    if n.is_int {
        n.is_float = true;
        n.float = n.int as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float = parse_go_uint(text).unwrap_or(0) as f64;
    } else if let Some(f) = parse_go_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", quote(text)));
        }
        n.is_float = true;
        n.float = f;
        if f.fract() == 0.0 && f.abs() < 9.2e18 {
            n.is_int = true;
            n.int = f as i64;
            n.is_uint = f >= 0.0;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {}", quote(text)));
    }
    Ok(n)
}

/// `strconv.ParseUint(text, 0, 64)`.
fn parse_go_uint(text: &str) -> Option<u64> {
    let (radix, digits) = int_radix(text.strip_prefix('+').unwrap_or(text))?;
    u64::from_str_radix(&digits, radix).ok()
}

/// `strconv.ParseInt(text, 0, 64)`.
fn parse_go_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = int_radix(body)?;
    let magnitude = u64::from_str_radix(&digits, radix).ok()?;
    if neg {
        if magnitude <= 1 << 63 {
            Some((magnitude as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// The radix and digits (underscores removed, only where a prefix allows them) of an
/// unsigned integer literal.
fn int_radix(body: &str) -> Option<(u32, String)> {
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    if digits.is_empty()
        || (digits.starts_with('_') && !prefixed)
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() || !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    Some((radix, clean))
}

/// `strconv.ParseFloat(text, 64)` for decimal literals (hex floats are rare; they parse too).
fn parse_go_float(text: &str) -> Option<f64> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    let (neg, body) = match lower.as_bytes().first() {
        Some(b'-') => (true, &lower[1..]),
        Some(b'+') => (false, &lower[1..]),
        _ => (false, lower.as_str()),
    };
    let value = if let Some(hex) = body.strip_prefix("0x") {
        let (mantissa, exp) = hex.split_once('p')?;
        let exp: i32 = exp.parse().ok()?;
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut v = 0f64;
        for c in int.chars().chain(frac.chars()) {
            v = v * 16.0 + f64::from(c.to_digit(16)?);
        }
        v * 2f64.powi(exp - 4 * frac.len() as i32)
    } else {
        if body.is_empty() || !body.chars().next()?.is_ascii_digit() && !body.starts_with('.') {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    Some(if neg { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funcs(name: &str) -> bool {
        matches!(name, "printf" | "len" | "join" | "eq")
    }

    fn err(text: &str) -> String {
        parse("t", text, &funcs).unwrap_err().0
    }

    fn round_trip(text: &str) -> String {
        parse("t", text, &funcs).unwrap()["t"].to_string()
    }

    #[test]
    fn trees_print_back() {
        assert_eq!(round_trip("a{{.X}}b"), "a{{.X}}b");
        assert_eq!(
            round_trip("{{range $i, $e := .A}}{{$e.B | len}}{{else}}none{{end}}"),
            "{{range $i, $e := .A}}{{$e.B | len}}{{else}}none{{end}}"
        );
        assert_eq!(
            round_trip("{{if .A}}1{{else if .B}}2{{else}}3{{end}}"),
            "{{if .A}}1{{else}}{{if .B}}2{{else}}3{{end}}{{end}}"
        );
        assert_eq!(
            round_trip("{{ (printf \"%s\" .X).Y }}"),
            "{{(printf \"%s\" .X).Y}}"
        );
    }

    #[test]
    fn errors_read_as_go() {
        assert_eq!(
            err("a\nb\n\n{{ split . }}"),
            "template: t:4: function \"split\" not defined"
        );
        assert_eq!(err("{{ $x }}"), "template: t:1: undefined variable \"$x\"");
        assert_eq!(err("{{ if .X }}"), "template: t:1: unexpected EOF");
        assert_eq!(err("{{ end }}"), "template: t:1: unexpected {{end}}");
        assert_eq!(
            err("{{ break }}"),
            "template: t:1: {{break}} outside {{range}}"
        );
        assert_eq!(err("{{ }}"), "template: t:1: missing value for command");
        assert_eq!(
            err("{{ .X | \"a\" }}"),
            "template: t:1: non executable command in pipeline stage 2"
        );
        assert_eq!(err("{{ .X }"), "template: t:1: unexpected \"}\" in operand");
        assert_eq!(
            err("{{ .X\n\n"),
            "template: t:3: unclosed action started at t:1"
        );
        assert_eq!(
            err("{{define \"a\"}}x{{end}}{{define \"a\"}}y{{end}}"),
            "template: t:1: template: multiple definition of template \"a\""
        );
        assert_eq!(
            err("{{ 1.x }}"),
            "template: t:1: bad number syntax: \"1.x\""
        );
        assert_eq!(
            err("{{ \"a\".B }}"),
            "template: t:1: unexpected . after term \"\\\"a\\\"\""
        );
    }

    #[test]
    fn numbers_parse_as_go() {
        let n = number("0x1F", false).unwrap();
        assert!(n.is_int && n.int == 31);
        let n = number("1e3", false).unwrap();
        assert!(n.is_float && n.is_int && n.int == 1000);
        let n = number("'a'", true).unwrap();
        assert_eq!(n.int, 97);
        assert!(number("99999999999999999999", false).is_err());
        assert_eq!(number("1_000", false).unwrap().int, 1000);
    }
}
