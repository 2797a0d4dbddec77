package check

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// This file reads shell scripts (a `sh -c` string, an entry point script) with the
// mvdan.cc/sh parser and follows what one run of the script would do, as far as that can be
// told without running it: which simple commands run and where (in the shell's own process,
// a subshell, a pipeline, the background), with which arguments after expansion, which TERM
// traps the shell sets, and whether `set -e` is on. It expands "$@", $1…, the container's
// environment variables and the script's own assignments; evaluates `case` words and simple
// `[ "$1" = x ]` tests when their operands are known (otherwise it follows every branch);
// follows shell functions where they are called; and stops at an `exec` or `exit` in the
// shell's own process. Everything else (command substitution, arithmetic, variables the
// task definition does not set) stays unknown and is kept as written.

// Limits that keep hostile input cheap: the parser recurses once per nesting level, and
// expansions could otherwise grow without bound.
const (
	maxShellNesting = 500     // bracket nesting refused before parsing
	maxWalkDepth    = 64      // compound commands and function calls followed
	maxWalkSteps    = 2000    // statements visited per script
	maxValueLen     = 4096    // longer values, patterns and words count as unknown
	maxLineLen      = 1 << 16 // bytes of one expanded command line
	maxFields       = 1024    // words per command line
	maxExpansions   = 20000   // words expanded per script
)

// fromImageCmd is what "$@" holds when the container sets no command: the image's CMD.
const fromImageCmd = "the image's CMD"

// ErrShellSyntax is wrapped by every shell parse error.
var ErrShellSyntax = errors.New("shell syntax error")

// shellLang is the parser variant for a shell's name: bash's grammar for bash, mksh's for
// ksh and mksh, zsh's for zsh, POSIX for sh, dash, ash and anything else.
func shellLang(shell string) syntax.LangVariant {
	switch shell {
	case "bash":
		return syntax.LangBash
	case "ksh", "mksh":
		return syntax.LangMirBSDKorn
	case "zsh":
		return syntax.LangZsh
	}
	return syntax.LangPOSIX
}

// parseShell parses src in the given variant. A POSIX script that uses a bash feature is
// parsed again as bash (some images' /bin/sh is bash, and dash would only fail when it reaches
// that line). Errors wrap ErrShellSyntax and name the line.
func parseShell(src string, lang syntax.LangVariant) (*syntax.File, syntax.LangVariant, error) {
	if d := bracketDepth(src); d > maxShellNesting {
		return nil, lang, fmt.Errorf("%w: brackets nested %d deep (more than %d)", ErrShellSyntax, d, maxShellNesting)
	}
	f, err := syntax.NewParser(syntax.Variant(lang)).Parse(strings.NewReader(src), "")
	var le syntax.LangError
	if err != nil && lang == syntax.LangPOSIX && errors.As(err, &le) {
		if fb, berr := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), ""); berr == nil {
			return fb, syntax.LangBash, nil
		}
	}
	if err != nil {
		return nil, lang, shellSyntaxError(err)
	}
	return f, lang, nil
}

func shellSyntaxError(err error) error {
	var pe syntax.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%w at line %d: %s", ErrShellSyntax, pe.Pos.Line(), pe.Text)
	}
	var le syntax.LangError
	if errors.As(err, &le) {
		return fmt.Errorf("%w at line %d: %s are not supported by %s", ErrShellSyntax, le.Pos.Line(), le.Feature, le.LangUsed)
	}
	return fmt.Errorf("%w: %v", ErrShellSyntax, err)
}

// bracketDepth is an upper bound of the script's nesting: ( and { counted with no regard
// for quoting.
func bracketDepth(src string) int {
	depth, deepest := 0, 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '(', '{':
			depth++
			deepest = max(deepest, depth)
		case ')', '}':
			depth = max(depth-1, 0)
		}
	}
	return deepest
}

// arg is one word of a command line as the program receives it.
type arg struct {
	s string // the value; for a word that could not be expanded, the word as written
	// from is the shell word it was expanded from when a variable gave its value
	// ("$SIDEKIQ_TIMEOUT"), and via says where that variable was set.
	from, via string
	// unknown names what the task definition does not give a value for: variables
	// ("$SIDEKIQ_TIMEOUT"), command substitutions; s is then the word as written.
	unknown []string
}

// plainArgs makes args of literal words (an exec-form command line).
func plainArgs(words []string) []arg {
	out := make([]arg, len(words))
	for i, w := range words {
		out[i] = arg{s: w}
	}
	return out
}

func strs(args []arg) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a.s
	}
	return out
}

// shellCmd is one simple command a script may run, with where it runs.
type shellCmd struct {
	call *syntax.CallExpr
	argv []arg
	// dollarAt reports a "$@" or "$*" word: the command runs the script's arguments.
	dollarAt bool
	// where is "" when the command runs in the shell's own process, else why not:
	// "pipeline", "background" or "subshell".
	where string
	// compound names the innermost compound command around it ("an if statement", "the
	// `worker)` branch of a case statement"); "" when there is none.
	compound string
	// fn is the shell function it runs in ("" at the top level).
	fn string
	// errexit reports `set -e` in effect when it runs; guarded that its status is tested
	// (an if or while condition, the left of && or ||, negated), so set -e does not apply.
	errexit, guarded bool
	index            int // position among the commands the walk met
}

// name is the command's name after expansion.
func (c *shellCmd) name() string {
	if len(c.argv) == 0 {
		return ""
	}
	return c.argv[0].s
}

// isExec reports `exec` with a command to run (not `exec >log 2>&1`).
func (c *shellCmd) isExec() bool { return c.name() == "exec" && len(c.execArgs()) > 0 }

// replacesShell reports an exec in the shell's own process: the shell becomes the program.
func (c *shellCmd) replacesShell() bool { return c.isExec() && c.where == "" }

// execArgs returns the words after `exec` and its options (-c, -l, -a name).
func (c *shellCmd) execArgs() []arg {
	rest := c.argv[1:]
	for len(rest) > 0 {
		a := rest[0].s
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

// program returns the command line the command starts: the words after exec, or all.
func (c *shellCmd) program() []arg {
	if c.isExec() {
		return c.execArgs()
	}
	return c.argv
}

// line is the 1-based line the command starts on (0 past the parser's line limit).
func (c *shellCmd) line() int { return int(c.call.Pos().Line()) }

// text returns the command as written in src.
func (c *shellCmd) text(src string) string {
	start, end := int(c.call.Pos().Offset()), int(c.call.End().Offset())
	if start < 0 || end > len(src) || start > end {
		return ""
	}
	return src[start:end]
}

// termTrap is a `trap … TERM` the shell sets in its own process.
type termTrap struct {
	cmd        *shellCmd
	action     string
	forwarding bool // the action kills someone (kill, pkill, killall)
	waits      bool // and waits for it
}

// shellRun is what one run of a script does, as far as the walk could tell.
type shellRun struct {
	src   string
	file  *syntax.File
	lang  syntax.LangVariant
	cmds  []*shellCmd // every simple command met, in the order met; function calls are followed instead
	trap  *termTrap   // the TERM trap in effect at the end (a later trap replaces an earlier one)
	funcs map[string]*syntax.FuncDecl
}

// shellVar is a variable's value as far as known.
type shellVar struct {
	val   string
	known bool
	via   string // where it was set
}

// walkState is the shell's state along one path of the walk.
type walkState struct {
	pos     []arg // the positional parameters
	posSet  bool  // pos is known (false: the image's CMD supplies them)
	vars    map[string]shellVar
	errexit bool
}

func (s *walkState) clone() *walkState {
	c := *s
	c.pos = append([]arg(nil), s.pos...)
	c.vars = make(map[string]shellVar, len(s.vars))
	for k, v := range s.vars {
		c.vars[k] = v
	}
	return &c
}

// flow says how a statement list ended.
type flow int

const (
	flowNext flow = iota // on to the next statement
	flowReturn
	flowExit // exec or exit: the shell (or this subshell) is done
)

// walkCtx is where a statement runs.
type walkCtx struct {
	where    string
	compound string
	fn       string
	guarded  bool
	depth    int
}

type walker struct {
	run      *shellRun
	arg0     string
	steps    int
	expanded int
	calls    map[string]bool // functions being followed (no recursion)
	trapC    []*shellCmd     // trap commands met in the shell's own process, in order
}

// scriptInput is what a script starts with.
type scriptInput struct {
	shell   string   // the shell running it: sh, bash, …
	arg0    string   // $0
	args    []arg    // "$@"
	argsSet bool     // false: the image's CMD supplies "$@", unknown here
	env     []envVar // the container's environment
	errexit bool     // -e on the shell's command line or shebang
}

type envVar struct{ name, value string }

// analyzeShell parses src and walks it.
func analyzeShell(src string, in scriptInput) (*shellRun, error) {
	f, lang, err := parseShell(src, shellLang(in.shell))
	if err != nil {
		return nil, err
	}
	run := &shellRun{src: src, file: f, lang: lang, funcs: map[string]*syntax.FuncDecl{}}
	st := &walkState{pos: in.args, posSet: in.argsSet, vars: map[string]shellVar{}, errexit: in.errexit}
	for _, e := range in.env {
		st.vars[e.name] = shellVar{val: e.value, known: true, via: "from the container's environment"}
	}
	w := &walker{run: run, arg0: in.arg0, calls: map[string]bool{}}
	w.stmts(f.Stmts, walkCtx{}, st)
	run.trap = w.termTrap()
	return run, nil
}

// stmts walks a statement list until one ends the shell.
func (w *walker) stmts(list []*syntax.Stmt, c walkCtx, st *walkState) flow {
	for _, s := range list {
		if fl := w.stmt(s, c, st); fl != flowNext {
			return fl
		}
	}
	return flowNext
}

func (w *walker) stmt(s *syntax.Stmt, c walkCtx, st *walkState) flow {
	if c.depth > maxWalkDepth || w.steps >= maxWalkSteps {
		return flowNext
	}
	w.steps++
	c.depth++
	if s.Negated {
		c.guarded = true
	}
	if s.Background || s.Coprocess || s.Disown {
		if c.where == "" {
			c.where = "background"
		}
		w.command(s.Cmd, c, st.clone())
		return flowNext
	}
	return w.command(s.Cmd, c, st)
}

func (w *walker) command(cmd syntax.Command, c walkCtx, st *walkState) flow {
	switch x := cmd.(type) {
	case *syntax.CallExpr:
		return w.call(x, c, st)
	case *syntax.BinaryCmd:
		return w.binary(x, c, st)
	case *syntax.Subshell:
		c.compound = "a subshell"
		if c.where == "" {
			c.where = "subshell"
		}
		w.stmts(x.Stmts, c, st.clone())
	case *syntax.Block:
		c.compound = "a { … } group"
		return w.stmts(x.Stmts, c, st)
	case *syntax.IfClause:
		c.compound = "an if statement"
		return w.ifClause(x, c, st)
	case *syntax.WhileClause:
		c.compound = "a while loop"
		if x.Until {
			c.compound = "an until loop"
		}
		cc := c
		cc.guarded = true
		w.stmts(x.Cond, cc, st)
		w.alternatives(st, false, func(b *walkState) flow { return w.stmts(x.Do, c, b) })
	case *syntax.ForClause:
		c.compound = "a for loop"
		w.alternatives(st, false, func(b *walkState) flow { return w.stmts(x.Do, c, b) })
	case *syntax.CaseClause:
		return w.caseClause(x, c, st)
	case *syntax.FuncDecl:
		if x.Name != nil {
			w.run.funcs[x.Name.Value] = x
		}
	case *syntax.DeclClause:
		for _, as := range x.Args {
			w.assign(as, st)
		}
	case *syntax.TimeClause:
		if x.Stmt != nil {
			c.compound = "a time command"
			w.stmt(x.Stmt, c, st)
		}
	case *syntax.CoprocClause:
		if x.Stmt != nil {
			c.where = "background"
			w.stmt(x.Stmt, c, st.clone())
		}
	}
	return flowNext
}

func (w *walker) binary(x *syntax.BinaryCmd, c walkCtx, st *walkState) flow {
	switch x.Op {
	case syntax.Pipe, syntax.PipeAll:
		// Every part of a pipeline runs in a child process of its own.
		pc := c
		if pc.where == "" {
			pc.where = "pipeline"
		}
		w.stmt(x.X, pc, st.clone())
		w.stmt(x.Y, pc, st.clone())
		return flowNext
	}
	// a && b, a || b: a's status is tested; b is taken to run after a succeeds (&&) and
	// may or may not run after a fails (||).
	lc := c
	lc.guarded = true
	if fl := w.stmt(x.X, lc, st); fl != flowNext {
		return fl
	}
	if x.Op == syntax.AndStmt {
		return w.stmt(x.Y, c, st)
	}
	rest := st.clone()
	if w.stmt(x.Y, c, rest) == flowNext {
		merge(st, []*walkState{st.clone(), rest})
	}
	return flowNext
}

// alternatives walks the ways a script may go, each from a copy of st; unless exhaustive,
// taking none of them is one more way. The ways that go on are merged into st; it returns
// flowExit when none does.
func (w *walker) alternatives(st *walkState, exhaustive bool, ways ...func(*walkState) flow) flow {
	var goOn []*walkState
	if !exhaustive {
		goOn = append(goOn, st.clone())
	}
	for _, way := range ways {
		b := st.clone()
		if way(b) == flowNext {
			goOn = append(goOn, b)
		}
	}
	if len(goOn) == 0 {
		return flowExit
	}
	merge(st, goOn)
	return flowNext
}

// merge sets st to what the paths agree on: a variable they disagree about becomes unknown;
// for the positional parameters the path that keeps st's wins (the usual "$@" passes the
// container's command on), else the first path's.
func merge(st *walkState, paths []*walkState) {
	names := map[string]bool{}
	for _, p := range paths {
		for k := range p.vars {
			names[k] = true
		}
	}
	for k := range names {
		v, same := paths[0].vars[k]
		for _, p := range paths[1:] {
			if p.vars[k] != v {
				same = false
			}
		}
		if !same {
			v = shellVar{}
		}
		st.vars[k] = v
	}
	pos := paths[0]
	for _, p := range paths {
		if argsEqual(p.pos, st.pos) && p.posSet == st.posSet {
			pos = p
		}
		st.errexit = st.errexit || p.errexit
	}
	st.pos, st.posSet = pos.pos, pos.posSet
}

func argsEqual(a, b []arg) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].s != b[i].s {
			return false
		}
	}
	return true
}

func (w *walker) ifClause(x *syntax.IfClause, c walkCtx, st *walkState) flow {
	cc := c
	cc.guarded = true
	if fl := w.stmts(x.Cond, cc, st); fl != flowNext {
		return fl
	}
	if x.Else == nil && len(x.Cond) == 0 {
		return w.stmts(x.Then, c, st) // a bare else
	}
	switch w.test(x.Cond, st) {
	case yes:
		return w.stmts(x.Then, c, st)
	case no:
		if x.Else == nil {
			return flowNext
		}
		return w.ifClause(x.Else, c, st)
	}
	ways := []func(*walkState) flow{func(b *walkState) flow { return w.stmts(x.Then, c, b) }}
	if x.Else != nil {
		ways = append(ways, func(b *walkState) flow { return w.ifClause(x.Else, c, b) })
	}
	return w.alternatives(st, x.Else != nil, ways...)
}

func (w *walker) caseClause(x *syntax.CaseClause, c walkCtx, st *walkState) flow {
	word, known := w.expandString(x.Word, st)
	var maybe []func(*walkState) flow
	exhaustive := false
	for _, it := range x.Items {
		var pats []string
		for _, p := range it.Patterns {
			pats = append(pats, w.source(p))
		}
		ic := c
		ic.compound = fmt.Sprintf("the `%s)` branch of a case statement", strings.Join(pats, "|"))
		way := func(b *walkState) flow { return w.stmts(it.Stmts, ic, b) }
		match := no
		for _, p := range it.Patterns {
			pat, ok := w.pattern(p, st)
			m := unknown
			if ok && known {
				m = matchPattern(pat, word)
			}
			if m == yes || m == unknown && match == no {
				match = m
			}
			if ok && pat == "*" {
				exhaustive = true
			}
		}
		switch match {
		case yes:
			if len(maybe) == 0 {
				return way(st) // the first item that matches runs, alone
			}
			return w.alternatives(st, true, append(maybe, way)...)
		case unknown:
			maybe = append(maybe, way)
		}
	}
	if len(maybe) == 0 {
		return flowNext
	}
	return w.alternatives(st, exhaustive, maybe...)
}

// call runs one simple command: the builtins that change the shell's state, function calls
// (followed), and everything else recorded.
func (w *walker) call(x *syntax.CallExpr, c walkCtx, st *walkState) flow {
	if len(x.Args) == 0 {
		for _, as := range x.Assigns {
			w.assign(as, st)
		}
		return flowNext
	}
	argv, dollarAt := w.expandArgs(x.Args, st)
	if len(argv) == 0 {
		return flowNext
	}
	name := argv[0].s
	if fn, ok := w.run.funcs[name]; ok && !w.calls[name] && fn.Body != nil {
		// A function runs in the shell that calls it, with its own "$@".
		w.calls[name] = true
		saved, savedSet := st.pos, st.posSet
		st.pos, st.posSet = argv[1:], true
		fc := c
		fc.fn = name
		fl := w.stmt(fn.Body, fc, st)
		st.pos, st.posSet = saved, savedSet
		delete(w.calls, name)
		if fl == flowExit {
			return flowExit
		}
		return flowNext
	}
	cmd := &shellCmd{call: x, argv: argv, dollarAt: dollarAt, where: c.where, compound: c.compound, fn: c.fn,
		errexit: st.errexit, guarded: c.guarded, index: len(w.run.cmds)}
	w.run.cmds = append(w.run.cmds, cmd)
	switch name {
	case "exec":
		if cmd.isExec() {
			return flowExit
		}
	case "exit":
		return flowExit
	case "return":
		return flowReturn
	case "set":
		setBuiltin(argv[1:], st)
	case "shift":
		n := 1
		if len(argv) > 1 {
			n, _ = strconv.Atoi(argv[1].s)
		}
		if n > 0 && st.posSet {
			st.pos = st.pos[min(n, len(st.pos)):]
		}
	case "trap":
		if c.where == "" {
			w.trapC = append(w.trapC, cmd)
		}
	case "export", "readonly", "local", "declare", "typeset":
		for _, as := range argv[1:] {
			if k, v, ok := strings.Cut(as.s, "="); ok && isName(k) {
				st.vars[k] = shellVar{val: v, known: len(as.unknown) == 0, via: fmt.Sprintf("set by the script on line %d", cmd.line())}
			}
		}
	}
	return flowNext
}

// setBuiltin applies `set`: -e/+e, -o errexit, and new positional parameters.
func setBuiltin(args []arg, st *walkState) {
	for i := 0; i < len(args); i++ {
		a := args[i].s
		switch {
		case a == "--":
			st.pos, st.posSet = append([]arg(nil), args[i+1:]...), true
			return
		case a == "-o" || a == "+o":
			if i+1 < len(args) && args[i+1].s == "errexit" {
				st.errexit = a == "-o"
			}
			i++
		case len(a) > 1 && (a[0] == '-' || a[0] == '+'):
			if strings.ContainsRune(a[1:], 'e') {
				st.errexit = a[0] == '-'
			}
			if strings.HasSuffix(a, "o") && i+1 < len(args) {
				if args[i+1].s == "errexit" {
					st.errexit = a[0] == '-'
				}
				i++
			}
		default:
			st.pos, st.posSet = append([]arg(nil), args[i:]...), true
			return
		}
	}
}

func (w *walker) assign(as *syntax.Assign, st *walkState) {
	if as == nil || as.Name == nil || as.Naked || as.Array != nil || as.Index != nil {
		return
	}
	name := as.Name.Value
	if as.Value == nil {
		st.vars[name] = shellVar{known: true, via: fmt.Sprintf("set by the script on line %d", as.Pos().Line())}
		return
	}
	val, known := w.expandString(as.Value, st)
	if as.Append {
		old := st.vars[name]
		val, known = old.val+val, known && old.known
	}
	if len(val) > maxValueLen {
		known = false
	}
	st.vars[name] = shellVar{val: val, known: known, via: fmt.Sprintf("set by the script on line %d", as.Pos().Line())}
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// termTrap returns the TERM trap the shell set last in its own process (nil after
// `trap - TERM`).
func (w *walker) termTrap() *termTrap {
	var out *termTrap
	for _, c := range w.trapC {
		args := c.argv[1:]
		if len(args) > 0 && (args[0].s == "-p" || args[0].s == "-l") {
			continue
		}
		if len(args) > 0 && args[0].s == "--" {
			args = args[1:]
		}
		if len(args) < 2 {
			continue
		}
		term := false
		for _, sig := range args[1:] {
			switch strings.ToUpper(sig.s) {
			case "TERM", "SIGTERM", "15":
				term = true
			}
		}
		if !term {
			continue
		}
		act := args[0].s
		if act == "-" {
			out = nil
			continue
		}
		t := termTrap{cmd: c, action: act}
		t.forwarding, t.waits = w.trapAction(act)
		out = &t
	}
	return out
}

// trapAction reads a trap's action: whether it kills someone and whether it waits, looking
// into the script's functions it calls.
func (w *walker) trapAction(act string) (kills, waits bool) {
	f, _, err := parseShell(act, w.run.lang)
	if err != nil {
		return strings.Contains(act, "kill"), strings.Contains(act, "kill") && strings.Contains(act, "wait")
	}
	seen := map[string]bool{}
	var visit func(list []*syntax.Stmt, depth int)
	visit = func(list []*syntax.Stmt, depth int) {
		if depth > maxWalkDepth {
			return
		}
		for _, s := range list {
			eachCall(s, depth, func(x *syntax.CallExpr) {
				name := ""
				if len(x.Args) > 0 {
					name = x.Args[0].Lit()
				}
				switch name {
				case "kill", "pkill", "killall":
					kills = true
				case "wait":
					waits = true
				}
				if fn, ok := w.run.funcs[name]; ok && !seen[name] && fn.Body != nil {
					seen[name] = true
					visit([]*syntax.Stmt{fn.Body}, depth+1)
				}
			})
		}
	}
	visit(f.Stmts, 0)
	return kills, kills && waits
}

// eachCall calls fn for every simple command in s, to a bounded depth.
func eachCall(s *syntax.Stmt, depth int, fn func(*syntax.CallExpr)) {
	if s == nil || depth > maxWalkDepth {
		return
	}
	list := func(l []*syntax.Stmt) {
		for _, x := range l {
			eachCall(x, depth+1, fn)
		}
	}
	switch x := s.Cmd.(type) {
	case *syntax.CallExpr:
		fn(x)
	case *syntax.BinaryCmd:
		eachCall(x.X, depth+1, fn)
		eachCall(x.Y, depth+1, fn)
	case *syntax.Subshell:
		list(x.Stmts)
	case *syntax.Block:
		list(x.Stmts)
	case *syntax.IfClause:
		for ic := x; ic != nil && depth < maxWalkDepth; ic = ic.Else {
			list(ic.Cond)
			list(ic.Then)
			depth++
		}
	case *syntax.WhileClause:
		list(x.Cond)
		list(x.Do)
	case *syntax.ForClause:
		list(x.Do)
	case *syntax.CaseClause:
		for _, it := range x.Items {
			list(it.Stmts)
		}
	case *syntax.TimeClause:
		eachCall(x.Stmt, depth+1, fn)
	}
}
