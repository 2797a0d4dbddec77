package check

import (
	"regexp"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/pattern"
	"mvdan.cc/sh/v3/syntax"
)

// This file evaluates words for the shell walk of shell.go: expansion of parameters
// ("$@", $1, $VAR, ${VAR:-default}, ${1#-} …) with what the task definition and the script
// set, shell patterns (case, [[ == ]], ${x#pattern}) and simple tests ([ "$1" = x ]).
// Whatever needs the running container (command substitution, arithmetic, a variable the
// task definition does not set) is unknown and kept as written.

// ---- tests: [ a = b ], [[ … ]] ----

// tri is a three-valued truth.
type tri int

const (
	unknown tri = iota
	yes
	no
)

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

func (t tri) not() tri {
	switch t {
	case yes:
		return no
	case no:
		return yes
	}
	return unknown
}

// test evaluates an if condition that is one `[ … ]`, `test …` or `[[ … ]]` comparing known
// strings.
func (w *walker) test(cond []*syntax.Stmt, st *walkState) tri {
	if len(cond) != 1 || cond[0].Background {
		return unknown
	}
	var r tri
	switch x := cond[0].Cmd.(type) {
	case *syntax.CallExpr:
		argv, _ := w.expandArgs(x.Args, st)
		for _, a := range argv {
			if len(a.unknown) > 0 {
				return unknown
			}
		}
		words := strs(argv)
		switch {
		case len(words) > 0 && words[0] == "[" && words[len(words)-1] == "]":
			r = testWords(words[1 : len(words)-1])
		case len(words) > 0 && words[0] == "test":
			r = testWords(words[1:])
		default:
			return unknown
		}
	case *syntax.TestClause:
		r = w.testExpr(x.X, st, 0)
	default:
		return unknown
	}
	if cond[0].Negated {
		r = r.not()
	}
	return r
}

// testWords evaluates the operands of `[`/test: X, ! X, -n X, -z X, X = Y, X != Y.
func testWords(w []string) tri {
	if len(w) > 0 && w[0] == "!" {
		return testWords(w[1:]).not()
	}
	switch {
	case len(w) == 1:
		return triOf(w[0] != "")
	case len(w) == 2 && w[0] == "-n":
		return triOf(w[1] != "")
	case len(w) == 2 && w[0] == "-z":
		return triOf(w[1] == "")
	case len(w) == 3 && (w[1] == "=" || w[1] == "=="):
		return triOf(w[0] == w[2])
	case len(w) == 3 && w[1] == "!=":
		return triOf(w[0] != w[2])
	}
	return unknown
}

func (w *walker) testExpr(e syntax.TestExpr, st *walkState, depth int) tri {
	if depth > maxWalkDepth {
		return unknown
	}
	str := func(e syntax.TestExpr) (string, bool) {
		wd, ok := e.(*syntax.Word)
		if !ok {
			return "", false
		}
		return w.expandString(wd, st)
	}
	switch x := e.(type) {
	case *syntax.Word:
		s, ok := str(x)
		if !ok {
			return unknown
		}
		return triOf(s != "")
	case *syntax.ParenTest:
		return w.testExpr(x.X, st, depth+1)
	case *syntax.UnaryTest:
		switch x.Op {
		case syntax.TsNot:
			return w.testExpr(x.X, st, depth+1).not()
		case syntax.TsEmpStr, syntax.TsNempStr:
			s, ok := str(x.X)
			if !ok {
				return unknown
			}
			return triOf((s == "") == (x.Op == syntax.TsEmpStr))
		}
	case *syntax.BinaryTest:
		switch x.Op {
		case syntax.TsMatch, syntax.TsMatchShort, syntax.TsNoMatch:
			s, ok := str(x.X)
			py, isWord := x.Y.(*syntax.Word)
			if !ok || !isWord {
				return unknown
			}
			pat, pok := w.pattern(py, st)
			if !pok {
				return unknown
			}
			m := matchPattern(pat, s)
			if x.Op == syntax.TsNoMatch {
				m = m.not()
			}
			return m
		case syntax.AndTest, syntax.OrTest:
			l, r := w.testExpr(x.X, st, depth+1), w.testExpr(x.Y, st, depth+1)
			if x.Op == syntax.AndTest {
				if l == no || r == no {
					return no
				}
				if l == yes && r == yes {
					return yes
				}
				return unknown
			}
			if l == yes || r == yes {
				return yes
			}
			if l == no && r == no {
				return no
			}
		}
	}
	return unknown
}

// matchPattern matches s against a shell pattern.
func matchPattern(pat, s string) tri {
	re := compilePattern(pat)
	if re == nil {
		return unknown
	}
	return triOf(re.MatchString(s))
}

// compilePattern compiles a shell pattern that matches whole strings; nil when it is too
// long or malformed.
func compilePattern(pat string) *regexp.Regexp {
	if len(pat) > maxValueLen {
		return nil
	}
	expr, err := pattern.Regexp(pat, pattern.EntireString)
	if err != nil {
		return nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil
	}
	return re
}

// ---- expansion ----

// fieldsBuf assembles the fields of one word: quoted text joins the current field,
// unquoted expansions split on blanks.
type fieldsBuf struct {
	out   []string
	metas []arg // per field: the "$@" element it came from, if any
	cur   strings.Builder
	meta  arg
	open  bool
	size  int
}

func (b *fieldsBuf) lit(s string) {
	b.cur.WriteString(s)
	b.open = true
	b.size += len(s)
}

func (b *fieldsBuf) end() {
	if b.open {
		b.out = append(b.out, b.cur.String())
		b.metas = append(b.metas, b.meta)
		b.cur.Reset()
		b.meta = arg{}
		b.open = false
	}
}

// joined is everything written, fields joined by blanks.
func (b *fieldsBuf) joined() string {
	return strings.Join(append(append([]string(nil), b.out...), b.cur.String()), " ")
}

func (b *fieldsBuf) split(s string) {
	if s == "" {
		return
	}
	parts := strings.Fields(s)
	if isBlank(s[0]) {
		b.end()
	}
	for i, p := range parts {
		if i > 0 {
			b.end()
		}
		b.lit(p)
	}
	if isBlank(s[len(s)-1]) {
		b.end()
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }

// wordExp is the state of expanding one word.
type wordExp struct {
	w        *walker
	st       *walkState
	buf      fieldsBuf
	unknown  []string // what has no known value; its text is written as is
	vars     []string
	via      string
	dollarAt bool
}

// unknownPart notes a part without a known value and keeps its text.
func (e *wordExp) unknownPart(what, text string) {
	e.unknown = append(e.unknown, what)
	e.buf.lit(text)
}

// expandArgs expands a command's words. A word that cannot be expanded is kept as written
// (one field) and names what is unknown.
func (w *walker) expandArgs(words []*syntax.Word, st *walkState) (out []arg, dollarAt bool) {
	size := 0
	for _, word := range words {
		e := w.expand(word, st, false)
		dollarAt = dollarAt || e.dollarAt
		if len(e.unknown) > 0 {
			out = append(out, arg{s: e.buf.joined(), unknown: dedupe(e.unknown)})
			continue
		}
		e.buf.end()
		for i, f := range e.buf.out {
			a := e.buf.metas[i]
			a.s = f
			if len(e.vars) > 0 && a.from == "" {
				a.from, a.via = w.source(word), e.via
			}
			out = append(out, a)
		}
		if size += e.buf.size; len(out) > maxFields || size > maxLineLen {
			return out[:min(len(out), maxFields)], dollarAt
		}
	}
	return out, dollarAt
}

// expand expands one word; quoted means no field splitting.
func (w *walker) expand(word *syntax.Word, st *walkState, quoted bool) *wordExp {
	e := &wordExp{w: w, st: st}
	w.expanded++
	switch {
	case w.expanded > maxExpansions:
		e.unknownPart("a word past the expansion budget", w.source(word))
	case word.End().Offset()-word.Pos().Offset() > maxValueLen:
		e.unknownPart("a very long word", w.source(word))
	default:
		e.parts(word.Parts, quoted, 0)
	}
	if e.buf.size > maxLineLen {
		e.buf = fieldsBuf{}
		e.unknownPart("a very long word", "…")
	}
	return e
}

// expandString expands a word to one string (no field splitting), as in assignments and
// case words; known is false when some part is unknown.
func (w *walker) expandString(word *syntax.Word, st *walkState) (string, bool) {
	if word == nil {
		return "", true
	}
	e := w.expand(word, st, true)
	if len(e.unknown) > 0 || e.buf.size > maxValueLen {
		return e.buf.joined(), false
	}
	return e.buf.cur.String(), true
}

// source returns a node's text as written.
func (w *walker) source(n syntax.Node) string {
	start, end := int(n.Pos().Offset()), int(n.End().Offset())
	src := w.run.src
	if start < 0 || end > len(src) || start > end {
		return ""
	}
	return src[start:end]
}

func (e *wordExp) parts(parts []syntax.WordPart, quoted bool, depth int) {
	if depth > 8 {
		e.unknownPart("a deeply nested expansion", "…")
		return
	}
	for _, p := range parts {
		switch x := p.(type) {
		case *syntax.Lit:
			e.buf.lit(unescape(x.Value, quoted))
		case *syntax.SglQuoted:
			if x.Dollar && strings.Contains(x.Value, `\`) {
				e.unknownPart("$'…'", x.Value)
				continue
			}
			e.buf.lit(x.Value)
		case *syntax.DblQuoted:
			e.buf.lit("") // "" is a field of its own
			e.parts(x.Parts, true, depth+1)
		case *syntax.ParamExp:
			e.param(x, quoted, depth)
		case *syntax.CmdSubst:
			e.unknownPart("a command substitution", e.w.source(x))
		case *syntax.ArithmExp:
			e.unknownPart("an arithmetic expansion", e.w.source(x))
		default:
			e.unknownPart(e.w.source(p), e.w.source(p))
		}
	}
}

// unescape removes the backslashes the shell removes: any in unquoted text, before $ ` " \
// and newline in double quotes.
func unescape(s string, quoted bool) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (!quoted || strings.IndexByte("$`\"\\\n", s[i+1]) >= 0) {
			i++
			if s[i] != '\n' {
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (e *wordExp) param(x *syntax.ParamExp, quoted bool, depth int) {
	if x.Param == nil || x.Excl || x.Length || x.Width || x.IsSet || x.Flags != nil || x.NestedParam != nil ||
		x.Index != nil || x.Slice != nil || x.Repl != nil || x.Names != 0 || len(x.Modifiers) > 0 {
		e.unknownPart(e.w.source(x), e.w.source(x))
		return
	}
	name := x.Param.Value
	if (name == "@" || name == "*") && x.Exp == nil {
		e.dollarAt = true
		switch {
		case !e.st.posSet:
			e.unknownPart(fromImageCmd, e.w.source(x))
		case name == "@" && quoted:
			for i, a := range e.st.pos {
				if i > 0 {
					e.buf.end()
				}
				e.buf.lit(a.s)
				e.buf.meta = a
				if e.buf.size > maxLineLen {
					return
				}
			}
		default:
			e.buf.split(strings.Join(strs(e.st.pos), " "))
		}
		return
	}
	v := e.lookup(name)
	if x.Exp != nil {
		v = e.operator(v, x.Exp, depth)
	}
	if !v.known {
		e.unknownPart(e.w.source(x), e.w.source(x))
		return
	}
	if quoted {
		e.buf.lit(v.val)
	} else {
		e.buf.split(v.val)
	}
}

// lookup returns a parameter's value; set reports whether it is set.
func (e *wordExp) lookup(name string) paramVal {
	st := e.st
	if n, err := strconv.Atoi(name); err == nil {
		switch {
		case n == 0:
			return paramVal{val: e.w.arg0, set: true, known: true}
		case !st.posSet:
			return paramVal{}
		case n <= len(st.pos):
			return paramVal{val: st.pos[n-1].s, set: true, known: len(st.pos[n-1].unknown) == 0}
		}
		return paramVal{known: true}
	}
	switch name {
	case "#":
		if !st.posSet {
			return paramVal{}
		}
		return paramVal{val: strconv.Itoa(len(st.pos)), set: true, known: true}
	case "@", "*":
		if !st.posSet {
			return paramVal{}
		}
		return paramVal{val: strings.Join(strs(st.pos), " "), set: len(st.pos) > 0, known: true}
	}
	v, ok := st.vars[name]
	if !ok || !v.known {
		return paramVal{}
	}
	e.vars = append(e.vars, name)
	if e.via == "" {
		e.via = v.via
	}
	return paramVal{val: v.val, set: true, known: true}
}

type paramVal struct {
	val        string
	set, known bool
}

// operator applies ${x-w}, ${x:-w}, ${x+w}, ${x=w}, ${x?w}, ${x#p} and their kin.
func (e *wordExp) operator(v paramVal, exp *syntax.Expansion, depth int) paramVal {
	word := func() paramVal {
		sub := &wordExp{w: e.w, st: e.st}
		if exp.Word != nil {
			if exp.Word.End().Offset()-exp.Word.Pos().Offset() > maxValueLen {
				return paramVal{}
			}
			sub.parts(exp.Word.Parts, true, depth+1)
		}
		if len(sub.unknown) > 0 || sub.buf.size > maxValueLen {
			return paramVal{}
		}
		e.vars = append(e.vars, sub.vars...)
		return paramVal{val: sub.buf.cur.String(), set: true, known: true}
	}
	if !v.known {
		return v
	}
	switch exp.Op {
	case syntax.DefaultUnset, syntax.AssignUnset:
		if v.set {
			return v
		}
		return word()
	case syntax.DefaultUnsetOrNull, syntax.AssignUnsetOrNull:
		if v.val != "" {
			return v
		}
		return word()
	case syntax.AlternateUnset:
		if v.set {
			return word()
		}
		return paramVal{known: true}
	case syntax.AlternateUnsetOrNull:
		if v.val != "" {
			return word()
		}
		return paramVal{known: true}
	case syntax.ErrorUnset, syntax.ErrorUnsetOrNull:
		if v.set && (exp.Op == syntax.ErrorUnset || v.val != "") {
			return v
		}
		return paramVal{}
	case syntax.RemSmallPrefix, syntax.RemLargePrefix, syntax.RemSmallSuffix, syntax.RemLargeSuffix:
		pat, ok := e.w.pattern(exp.Word, e.st)
		if !ok {
			return paramVal{}
		}
		return paramVal{val: trimPattern(v.val, pat, exp.Op), set: v.set, known: true}
	}
	return paramVal{}
}

// trimPattern removes the shortest or longest prefix or suffix of s that matches pat.
func trimPattern(s, pat string, op syntax.ParExpOperator) string {
	if len(s) > maxValueLen {
		return s
	}
	prefix := op == syntax.RemSmallPrefix || op == syntax.RemLargePrefix
	small := op == syntax.RemSmallPrefix || op == syntax.RemSmallSuffix
	re := compilePattern(pat)
	if re == nil {
		return s
	}
	for k := 0; k <= len(s); k++ {
		n := k // the length removed
		if !small {
			n = len(s) - k
		}
		if prefix && re.MatchString(s[:n]) {
			return s[n:]
		}
		if !prefix && re.MatchString(s[len(s)-n:]) {
			return s[:len(s)-n]
		}
	}
	return s
}

// pattern turns a word into a shell pattern: quoted parts match literally, unquoted ones
// keep their wildcards.
func (w *walker) pattern(word *syntax.Word, st *walkState) (string, bool) {
	if word == nil {
		return "", true
	}
	var b strings.Builder
	for _, p := range word.Parts {
		switch x := p.(type) {
		case *syntax.Lit:
			b.WriteString(x.Value)
		case *syntax.SglQuoted:
			if x.Dollar {
				return "", false
			}
			b.WriteString(pattern.QuoteMeta(x.Value, 0))
		case *syntax.DblQuoted:
			s, ok := w.expandString(&syntax.Word{Parts: []syntax.WordPart{x}}, st)
			if !ok {
				return "", false
			}
			b.WriteString(pattern.QuoteMeta(s, 0))
		case *syntax.ParamExp:
			s, ok := w.expandString(&syntax.Word{Parts: []syntax.WordPart{x}}, st)
			if !ok {
				return "", false
			}
			b.WriteString(s)
		default:
			return "", false
		}
		if b.Len() > maxValueLen {
			return "", false
		}
	}
	return b.String(), true
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
