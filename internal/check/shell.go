package check

import (
	"errors"
	"fmt"
	"strings"
)

// This file holds a small POSIX shell parser: enough structure of a `sh -c` script or an
// entrypoint script to tell which simple command starts the process, whether it is exec'd,
// and whether it runs in the shell's own process (not in a pipeline, subshell or the
// background). It does not expand anything: `$VAR`, `"$@"` and `$(…)` stay literal text.

// maxShellDepth bounds nesting of subshells and compound commands so hostile input cannot
// exhaust the stack.
const maxShellDepth = 64

// ErrShellSyntax is wrapped by every shell parse error.
var ErrShellSyntax = errors.New("shell syntax error")

// Word is one shell word.
type Word struct {
	Raw string // the word as written, quotes included
	Lit string // the word with quotes and backslashes removed; expansions kept as text
	Pos int    // byte offset of the word's start in the script
}

// SimpleCommand is one simple command with its context in the script.
type SimpleCommand struct {
	Assigns []string // leading NAME=value words
	Args    []Word   // the command name and its arguments (redirections removed)
	Start   int      // byte offset of the command's first word
	End     int      // byte offset just after its last word
	Line    int      // 1-based line of Start

	// SameProcess reports that the command runs in the shell's own process (not inside a
	// subshell, a multi-command pipeline, the background or a command substitution), so an
	// `exec` there replaces the shell itself.
	SameProcess bool
	// InCompound reports that the command sits inside if/while/until/for/case or { … }.
	InCompound bool
	// Where says why SameProcess is false: "pipeline", "background", "subshell" or
	// "function"; empty when SameProcess is true.
	Where string
	// Index is the command's position among all simple commands of the script.
	Index int
}

// Name returns the command name (after leading assignments), or "".
func (c *SimpleCommand) Name() string {
	if len(c.Args) == 0 {
		return ""
	}
	return c.Args[0].Lit
}

// Exec reports whether the command is `exec something` (exec with a command to run).
func (c *SimpleCommand) Exec() bool {
	if c.Name() != "exec" {
		return false
	}
	rest := c.execArgs()
	return len(rest) > 0
}

// execArgs returns the words after `exec` and its options (-c, -l, -a name).
func (c *SimpleCommand) execArgs() []Word {
	rest := c.Args[1:]
	for len(rest) > 0 {
		a := rest[0].Lit
		switch {
		case a == "--":
			return rest[1:]
		case a == "-a" && len(rest) > 1:
			rest = rest[2:]
		case len(a) > 1 && a[0] == '-' && strings.Trim(a[1:], "cl") == "":
			rest = rest[1:]
		default:
			return rest
		}
	}
	return rest
}

// Text returns the command as written in script.
func (c *SimpleCommand) Text(script string) string {
	if c.Start < 0 || c.End > len(script) || c.Start > c.End {
		return ""
	}
	return script[c.Start:c.End]
}

// Script is the parsed structure of a shell script.
type Script struct {
	Source   string
	Commands []*SimpleCommand // every simple command, in source order
	// Top lists the top-level items (separated by `;`, `&` or newlines); each is an and-or
	// list of pipelines.
	Top []AndOr
	// Traps lists every `trap` command found (same-process or not).
	Traps []*SimpleCommand
}

// AndOr is a top-level and-or list: pipelines joined by && or ||.
type AndOr struct {
	Pipelines  [][]node // each pipeline: one or more commands
	Background bool     // ended by &
}

// node is a command in a pipeline: a simple command, or a compound one.
type node struct {
	simple *SimpleCommand
	kind   string // "simple", "subshell", "group", "if", "while", "until", "for", "case"
}

// ParseShell parses a shell script. It never panics; malformed input returns an error
// wrapping ErrShellSyntax.
func ParseShell(src string) (*Script, error) {
	toks, err := lexShell(src)
	if err != nil {
		return nil, err
	}
	p := &shellParser{src: src, toks: toks, script: &Script{Source: src}}
	top, err := p.parseList(0, ctx{sameProcess: true}, nil, nil)
	if err != nil {
		return nil, err
	}
	if !p.eof() {
		return nil, p.errorf("unexpected %q", p.peek().text)
	}
	p.script.Top = top
	return p.script, nil
}

// ---- lexer ----

type tokKind int

const (
	tWord tokKind = iota
	tOp           // && || ; ;; | & ( ) newline
)

type token struct {
	kind tokKind
	text string // operator text, or the raw word
	lit  string // word literal
	pos  int
	end  int
}

func lexShell(src string) ([]token, error) {
	var toks []token
	i := 0
	var pendingHeredocs []heredoc
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			i += 2
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '\n':
			toks = append(toks, token{kind: tOp, text: "\n", pos: i, end: i + 1})
			i++
			if len(pendingHeredocs) > 0 {
				i = skipHeredocs(src, i, pendingHeredocs)
				pendingHeredocs = nil
			}
		case c == '&' || c == '|' || c == ';':
			op := string(c)
			if i+1 < len(src) && src[i+1] == c {
				op += string(c)
			}
			toks = append(toks, token{kind: tOp, text: op, pos: i, end: i + len(op)})
			i += len(op)
		case c == '(' || c == ')':
			toks = append(toks, token{kind: tOp, text: string(c), pos: i, end: i + 1})
			i++
		case c == '<' || c == '>':
			// Redirection: operator, then its target word. Both are dropped.
			j := i + 1
			heredocOp := false
			if j < len(src) && (src[j] == c || src[j] == '&' || src[j] == '|' || (c == '<' && src[j] == '>')) {
				heredocOp = c == '<' && src[j] == '<'
				j++
			}
			stripTabs := false
			if heredocOp && j < len(src) && src[j] == '-' {
				stripTabs = true
				j++
			}
			for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
				j++
			}
			if j >= len(src) || strings.IndexByte("\n;&|()<>", src[j]) >= 0 {
				return nil, fmt.Errorf("%w: redirection without a target at offset %d", ErrShellSyntax, i)
			}
			w, next, err := lexWord(src, j)
			if err != nil {
				return nil, err
			}
			if heredocOp {
				pendingHeredocs = append(pendingHeredocs, heredoc{delim: w.lit, stripTabs: stripTabs})
			}
			i = next
		default:
			w, next, err := lexWord(src, i)
			if err != nil {
				return nil, err
			}
			// An IO number (2>…) directly before a redirection is part of it.
			if next < len(src) && (src[next] == '<' || src[next] == '>') && isDigits(w.text) {
				i = next
				continue
			}
			toks = append(toks, w)
			i = next
		}
	}
	return toks, nil
}

type heredoc struct {
	delim     string
	stripTabs bool
}

// skipHeredocs skips the bodies of here-documents that start at offset i.
func skipHeredocs(src string, i int, docs []heredoc) int {
	for _, d := range docs {
		for i < len(src) {
			end := strings.IndexByte(src[i:], '\n')
			line := src[i:]
			if end >= 0 {
				line = src[i : i+end]
				i += end + 1
			} else {
				i = len(src)
			}
			if d.stripTabs {
				line = strings.TrimLeft(line, "\t")
			}
			if line == d.delim {
				break
			}
		}
	}
	return i
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// lexWord reads one word starting at i.
func lexWord(src string, i int) (token, int, error) {
	start := i
	var lit strings.Builder
	for i < len(src) {
		c := src[i]
		switch {
		case strings.IndexByte(" \t\r\n;&|()<>", c) >= 0:
			return token{kind: tWord, text: src[start:i], lit: lit.String(), pos: start, end: i}, i, nil
		case c == '\\':
			if i+1 < len(src) {
				if src[i+1] != '\n' {
					lit.WriteByte(src[i+1])
				}
				i += 2
			} else {
				i++
			}
		case c == '\'':
			j := strings.IndexByte(src[i+1:], '\'')
			if j < 0 {
				return token{}, 0, fmt.Errorf("%w: unterminated single quote at offset %d", ErrShellSyntax, i)
			}
			lit.WriteString(src[i+1 : i+1+j])
			i += j + 2
		case c == '"':
			j, err := scanDouble(src, i+1, &lit)
			if err != nil {
				return token{}, 0, err
			}
			i = j
		case c == '`':
			j := i + 1
			for j < len(src) && src[j] != '`' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return token{}, 0, fmt.Errorf("%w: unterminated backquote at offset %d", ErrShellSyntax, i)
			}
			lit.WriteString(src[i : j+1])
			i = j + 1
		case c == '$' && i+1 < len(src) && (src[i+1] == '(' || src[i+1] == '{'):
			j, err := skipBalanced(src, i+1)
			if err != nil {
				return token{}, 0, err
			}
			lit.WriteString(src[i:j])
			i = j
		default:
			lit.WriteByte(c)
			i++
		}
	}
	return token{kind: tWord, text: src[start:i], lit: lit.String(), pos: start, end: i}, i, nil
}

// scanDouble reads a double-quoted string whose body starts at i; it returns the offset
// after the closing quote.
func scanDouble(src string, i int, lit *strings.Builder) (int, error) {
	open := i - 1
	for i < len(src) {
		c := src[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\' && i+1 < len(src):
			n := src[i+1]
			if strings.IndexByte("$`\"\\\n", n) >= 0 {
				if n != '\n' {
					lit.WriteByte(n)
				}
			} else {
				lit.WriteByte('\\')
				lit.WriteByte(n)
			}
			i += 2
		case c == '$' && i+1 < len(src) && (src[i+1] == '(' || src[i+1] == '{'):
			j, err := skipBalanced(src, i+1)
			if err != nil {
				return 0, err
			}
			lit.WriteString(src[i:j])
			i = j
		case c == '`':
			j := i + 1
			for j < len(src) && src[j] != '`' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return 0, fmt.Errorf("%w: unterminated backquote at offset %d", ErrShellSyntax, i)
			}
			lit.WriteString(src[i : j+1])
			i = j + 1
		default:
			lit.WriteByte(c)
			i++
		}
	}
	return 0, fmt.Errorf("%w: unterminated double quote at offset %d", ErrShellSyntax, open)
}

// skipBalanced skips a (…) or {…} group starting at src[i], honouring quotes; it returns
// the offset after the closing bracket.
func skipBalanced(src string, i int) (int, error) {
	open := src[i]
	closeCh := byte(')')
	if open == '{' {
		closeCh = '}'
	}
	depth := 0
	start := i
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\\':
			i += 2
			continue
		case c == '\'' && open == '(':
			j := strings.IndexByte(src[i+1:], '\'')
			if j < 0 {
				return 0, fmt.Errorf("%w: unterminated single quote at offset %d", ErrShellSyntax, i)
			}
			i += j + 2
			continue
		case c == '"':
			var discard strings.Builder
			j, err := scanDouble(src, i+1, &discard)
			if err != nil {
				return 0, err
			}
			i = j
			continue
		case c == open:
			depth++
		case c == closeCh:
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		}
		i++
	}
	return 0, fmt.Errorf("%w: unterminated %c at offset %d", ErrShellSyntax, open, start)
}

// ---- parser ----

type shellParser struct {
	src    string
	toks   []token
	i      int
	script *Script
	depth  int
}

type ctx struct {
	sameProcess bool
	inCompound  bool
	where       string
}

// markOther records that the command runs outside the shell's own process.
func (c *SimpleCommand) markOther(where string) {
	c.SameProcess = false
	if c.Where == "" {
		c.Where = where
	}
}

func (p *shellParser) eof() bool { return p.i >= len(p.toks) }

func (p *shellParser) peek() token {
	if p.eof() {
		return token{kind: tOp, text: "end of script", pos: len(p.src), end: len(p.src)}
	}
	return p.toks[p.i]
}

func (p *shellParser) errorf(format string, args ...any) error {
	pos := p.peek().pos
	return fmt.Errorf("%w: %s at line %d", ErrShellSyntax, fmt.Sprintf(format, args...), lineOf(p.src, pos))
}

func lineOf(src string, pos int) int {
	if pos > len(src) {
		pos = len(src)
	}
	return strings.Count(src[:pos], "\n") + 1
}

// isWord reports whether the next token is the unquoted reserved word w.
func (p *shellParser) isWord(w string) bool {
	t := p.peek()
	return !p.eof() && t.kind == tWord && t.text == w
}

func (p *shellParser) skipNewlines() {
	for !p.eof() && p.peek().kind == tOp && p.peek().text == "\n" {
		p.i++
	}
}

// parseList parses and-or lists separated by ; & and newlines until EOF, one of the stop
// words at command position, or one of the stop operators.
func (p *shellParser) parseList(depth int, c ctx, stopWords, stopOps []string) ([]AndOr, error) {
	if depth > maxShellDepth {
		return nil, p.errorf("nesting deeper than %d", maxShellDepth)
	}
	var list []AndOr
	for {
		p.skipNewlines()
		for !p.eof() && p.peek().kind == tOp && p.peek().text == ";" {
			p.i++ // a stray ; is harmless for our purpose
			p.skipNewlines()
		}
		if p.eof() {
			return list, nil
		}
		t := p.peek()
		if t.kind == tWord && contains(stopWords, t.text) {
			return list, nil
		}
		if t.kind == tOp && contains(stopOps, t.text) {
			return list, nil
		}
		// Look ahead for a trailing & to know whether this item runs in the background.
		startTok := p.i
		startCmds := len(p.script.Commands)
		ao, err := p.parseAndOr(depth, c)
		if err != nil {
			return nil, err
		}
		if !p.eof() && p.peek().kind == tOp && p.peek().text == "&" {
			ao.Background = true
			for _, sc := range p.script.Commands[startCmds:] {
				sc.markOther("background")
			}
			p.i++
		} else if !p.eof() && p.peek().kind == tOp && p.peek().text == ";" {
			p.i++
		} else if !p.eof() && p.peek().kind == tOp && p.peek().text == "\n" {
			p.i++
		}
		if p.i == startTok {
			return nil, p.errorf("unexpected %q", p.peek().text)
		}
		list = append(list, ao)
	}
}

func (p *shellParser) parseAndOr(depth int, c ctx) (AndOr, error) {
	var ao AndOr
	for {
		pl, err := p.parsePipeline(depth, c)
		if err != nil {
			return ao, err
		}
		ao.Pipelines = append(ao.Pipelines, pl)
		if !p.eof() && p.peek().kind == tOp && (p.peek().text == "&&" || p.peek().text == "||") {
			p.i++
			p.skipNewlines()
			continue
		}
		return ao, nil
	}
}

func (p *shellParser) parsePipeline(depth int, c ctx) ([]node, error) {
	if p.isWord("!") {
		p.i++
	}
	startCmds := len(p.script.Commands)
	var pl []node
	for {
		n, err := p.parseCommand(depth, c)
		if err != nil {
			return nil, err
		}
		pl = append(pl, n)
		if !p.eof() && p.peek().kind == tOp && p.peek().text == "|" {
			p.i++
			p.skipNewlines()
			continue
		}
		break
	}
	if len(pl) > 1 {
		for _, sc := range p.script.Commands[startCmds:] {
			sc.markOther("pipeline")
		}
	}
	return pl, nil
}

var reservedStarts = map[string]bool{"if": true, "while": true, "until": true, "for": true, "case": true, "{": true}

func (p *shellParser) parseCommand(depth int, c ctx) (node, error) {
	if depth > maxShellDepth {
		return node{}, p.errorf("nesting deeper than %d", maxShellDepth)
	}
	if p.eof() {
		return node{}, p.errorf("missing command")
	}
	t := p.peek()
	if t.kind == tOp {
		if t.text == "(" {
			p.i++
			inner := ctx{sameProcess: false, inCompound: true, where: "subshell"}
			if _, err := p.parseList(depth+1, inner, nil, []string{")"}); err != nil {
				return node{}, err
			}
			if p.eof() || p.peek().text != ")" {
				return node{}, p.errorf("missing )")
			}
			p.i++
			return node{kind: "subshell"}, nil
		}
		return node{}, p.errorf("unexpected %q", t.text)
	}
	if reservedStarts[t.text] {
		return p.parseCompound(depth, c)
	}
	return p.parseSimple(depth, c)
}

func (p *shellParser) expectWord(w string) error {
	if !p.isWord(w) {
		return p.errorf("expected %q, found %q", w, p.peek().text)
	}
	p.i++
	return nil
}

func (p *shellParser) parseCompound(depth int, c ctx) (node, error) {
	kw := p.peek().text
	p.i++
	inner := ctx{sameProcess: c.sameProcess, inCompound: true, where: c.where}
	body := func(stops ...string) error {
		_, err := p.parseList(depth+1, inner, stops, nil)
		return err
	}
	switch kw {
	case "{":
		if err := body("}"); err != nil {
			return node{}, err
		}
		if err := p.expectWord("}"); err != nil {
			return node{}, err
		}
		return node{kind: "group"}, nil
	case "if":
		if err := body("then"); err != nil {
			return node{}, err
		}
		if err := p.expectWord("then"); err != nil {
			return node{}, err
		}
		for {
			if err := body("elif", "else", "fi"); err != nil {
				return node{}, err
			}
			switch {
			case p.isWord("elif"):
				p.i++
				if err := body("then"); err != nil {
					return node{}, err
				}
				if err := p.expectWord("then"); err != nil {
					return node{}, err
				}
			case p.isWord("else"):
				p.i++
			case p.isWord("fi"):
				p.i++
				return node{kind: "if"}, nil
			default:
				return node{}, p.errorf("missing fi")
			}
		}
	case "while", "until":
		if err := body("do"); err != nil {
			return node{}, err
		}
		if err := p.expectWord("do"); err != nil {
			return node{}, err
		}
		if err := body("done"); err != nil {
			return node{}, err
		}
		if err := p.expectWord("done"); err != nil {
			return node{}, err
		}
		return node{kind: kw}, nil
	case "for":
		if p.eof() || p.peek().kind != tWord {
			return node{}, p.errorf("missing for variable")
		}
		p.i++
		p.skipNewlines()
		if p.isWord("in") {
			p.i++
			for !p.eof() && p.peek().kind == tWord {
				p.i++
			}
		}
		for !p.eof() && p.peek().kind == tOp && (p.peek().text == ";" || p.peek().text == "\n") {
			p.i++
		}
		if err := p.expectWord("do"); err != nil {
			return node{}, err
		}
		if err := body("done"); err != nil {
			return node{}, err
		}
		if err := p.expectWord("done"); err != nil {
			return node{}, err
		}
		return node{kind: "for"}, nil
	case "case":
		if p.eof() || p.peek().kind != tWord {
			return node{}, p.errorf("missing case word")
		}
		p.i++
		p.skipNewlines()
		if err := p.expectWord("in"); err != nil {
			return node{}, err
		}
		for {
			p.skipNewlines()
			if p.isWord("esac") {
				p.i++
				return node{kind: "case"}, nil
			}
			if p.eof() {
				return node{}, p.errorf("missing esac")
			}
			// Pattern: words and | up to ).
			if p.peek().kind == tOp && p.peek().text == "(" {
				p.i++
			}
			for !p.eof() && !(p.peek().kind == tOp && p.peek().text == ")") {
				if p.peek().kind == tOp && p.peek().text != "|" {
					return node{}, p.errorf("unexpected %q in case pattern", p.peek().text)
				}
				p.i++
			}
			if p.eof() {
				return node{}, p.errorf("missing ) in case pattern")
			}
			p.i++
			if _, err := p.parseList(depth+1, inner, []string{"esac"}, []string{";;"}); err != nil {
				return node{}, err
			}
			if !p.eof() && p.peek().kind == tOp && p.peek().text == ";;" {
				p.i++
			}
		}
	}
	return node{}, p.errorf("unexpected %q", kw)
}

func (p *shellParser) parseSimple(depth int, c ctx) (node, error) {
	sc := &SimpleCommand{SameProcess: c.sameProcess, InCompound: c.inCompound, Where: c.where, Start: -1}
	for !p.eof() && p.peek().kind == tWord {
		t := p.peek()
		if sc.Start < 0 {
			sc.Start = t.pos
		}
		sc.End = t.end
		if len(sc.Args) == 0 && isAssignment(t.text) {
			sc.Assigns = append(sc.Assigns, t.lit)
		} else {
			sc.Args = append(sc.Args, Word{Raw: t.text, Lit: t.lit, Pos: t.pos})
		}
		p.i++
		// A function definition `name() { … }` is out of scope: treat the parens as a
		// harmless end of the command.
	}
	if sc.Start < 0 {
		return node{}, p.errorf("unexpected %q", p.peek().text)
	}
	if len(sc.Args) == 1 && !p.eof() && p.peek().kind == tOp && p.peek().text == "(" &&
		p.i+1 < len(p.toks) && p.toks[p.i+1].text == ")" {
		// Function definition: name() body. Parse the body as a compound command that
		// does not run now.
		p.i += 2
		p.skipNewlines()
		n, err := p.parseCommand(depth+1, ctx{sameProcess: false, inCompound: true, where: "function"})
		if err != nil {
			return node{}, err
		}
		return n, nil
	}
	sc.Line = lineOf(p.src, sc.Start)
	sc.Index = len(p.script.Commands)
	p.script.Commands = append(p.script.Commands, sc)
	if sc.Name() == "trap" {
		p.script.Traps = append(p.script.Traps, sc)
	}
	return node{simple: sc, kind: "simple"}, nil
}

// isAssignment reports whether a raw word is NAME=value.
func isAssignment(raw string) bool {
	eq := strings.IndexByte(raw, '=')
	if eq <= 0 {
		return false
	}
	for i := 0; i < eq; i++ {
		c := raw[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
