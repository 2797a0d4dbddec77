package check

// ShellCommands parses src as the named shell would and walks it with args as "$@"; it
// returns, for each command the walk met, its byte span in src and its line. For the fuzz
// targets of package check_test.
func ShellCommands(shell, src string, args []string) (spans [][2]int, lines []int, err error) {
	run, err := analyzeShell(src, scriptInput{shell: shell, arg0: shell, args: plainArgs(args), argsSet: true})
	if err != nil {
		return nil, nil, err
	}
	for _, c := range run.cmds {
		spans = append(spans, [2]int{int(c.call.Pos().Offset()), int(c.call.End().Offset())})
		lines = append(lines, c.line())
	}
	return spans, lines, nil
}
