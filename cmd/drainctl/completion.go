package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Completion scripts: bash and zsh ask the binary itself (urfave/cli's hidden
// --generate-bash-completion); fish gets the whole command tree, generated from the same
// definitions as --help.
const bashCompletion = `# drainctl completion for bash: source <(drainctl completion bash)
_drainctl_complete() {
  local cur words cword
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=("${COMP_WORDS[@]:0:$COMP_CWORD}")
  local opts
  if [[ "$cur" == "-"* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
}
complete -o bashdefault -o default -F _drainctl_complete drainctl
`

const zshCompletion = `#compdef drainctl
# drainctl completion for zsh: source <(drainctl completion zsh)
_drainctl() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _drainctl drainctl
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		UsageText: "drainctl completion bash|zsh|fish",
		Description: `EXAMPLES:
   source <(drainctl completion bash)                      # in ~/.bashrc
   drainctl completion zsh > "${fpath[1]}/_drainctl"       # zsh
   drainctl completion fish > ~/.config/fish/completions/drainctl.fish`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("completion needs one shell: bash, zsh or fish")
			}
			switch shell := strings.ToLower(c.Args().First()); shell {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("generate the fish completion: %w", err)
				}
				fmt.Fprint(c.App.Writer, s)
			default:
				return usageErr("completion %q: want bash, zsh or fish", shell)
			}
			return nil
		},
	}
}

// manCommand prints drainctl's man page, generated from the same definitions as --help
// (docs/drainctl.1 is this output; a test keeps it current).
func manCommand() *cli.Command {
	return &cli.Command{
		Name:      "man",
		Usage:     "print the man page (roff); docs/drainctl.1 holds it",
		UsageText: "drainctl man > drainctl.1 && man ./drainctl.1",
		Action: func(c *cli.Context) error {
			s, err := c.App.ToManWithSection(1)
			if err != nil {
				return fmt.Errorf("generate the man page: %w", err)
			}
			fmt.Fprint(c.App.Writer, s)
			return nil
		},
	}
}
