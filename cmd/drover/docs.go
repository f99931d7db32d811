package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// completionCommand prints a shell completion script generated from the command tree, so it
// never lists a command or flag that does not exist.
func completionCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a completion script for bash, zsh or fish",
		ArgsUsage: "SHELL",
		Description: `Prints a script that completes drover's commands, subcommands and flags.

Examples:
   source <(drover completion bash)
   drover completion zsh > "${fpath[1]}/_drover"
   drover completion fish > ~/.config/fish/completions/drover.fish`,
		Action: func(c *cli.Context) error {
			tree := commandTree(a.Commands, globalFlagNames(a.Flags))
			switch shell := c.Args().First(); shell {
			case "bash":
				fmt.Fprint(a.stdout, bashCompletion(tree))
			case "zsh":
				fmt.Fprint(a.stdout, "#compdef drover\nautoload -U +X bashcompinit && bashcompinit\n"+bashCompletion(tree))
			case "fish":
				fmt.Fprint(a.stdout, fishCompletion(tree))
			default:
				return usageError(fmt.Sprintf("no completion for shell %q", shell), "drover completion bash, zsh or fish")
			}
			return nil
		},
	}
}

// manCommand prints drover's man page (roff), made from the same command tree as --help.
func manCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the man page (drover man > drover.1; man ./drover.1)",
		Action: func(*cli.Context) error {
			page, err := a.ToManWithSection(1)
			if err != nil {
				return failed(fmt.Errorf("man page: %w", err), "")
			}
			fmt.Fprint(a.stdout, page)
			return nil
		},
	}
}

// commandTree maps a command path ("" for the top, "rollout" for its subcommands) to the words
// that may follow it: subcommand names and flags.
func commandTree(cmds []*cli.Command, global []string) map[string][]string {
	tree := map[string][]string{}
	var walk func(path string, cmds []*cli.Command, flags []string)
	walk = func(path string, cmds []*cli.Command, flags []string) {
		words := append([]string{}, flags...)
		for _, c := range cmds {
			if c.Hidden || c.Name == "help" {
				continue
			}
			words = append(words, c.Name)
			sub := strings.TrimSpace(path + " " + c.Name)
			walk(sub, c.Subcommands, append(globalFlagNames(c.Flags), "--help"))
		}
		sort.Strings(words)
		tree[path] = slices.Compact(words)
	}
	walk("", cmds, append(global, "--help", "--version"))
	delete(tree, "help")
	return tree
}

func globalFlagNames(flags []cli.Flag) []string {
	var out []string
	for _, f := range flags {
		for _, n := range f.Names() {
			if len(n) > 1 {
				out = append(out, "--"+n)
			}
		}
	}
	return out
}

func bashCompletion(tree map[string][]string) string {
	var b strings.Builder
	b.WriteString("# bash completion for drover (drover completion bash)\n_drover() {\n")
	b.WriteString("  local cur path w\n  cur=\"${COMP_WORDS[COMP_CWORD]}\"\n  path=\"\"\n")
	b.WriteString("  for w in \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"; do\n    case \"$w\" in -*) ;; *) [ -n \"$(_drover_words \"${path:+$path }$w\")\" ] && path=\"${path:+$path }$w\" ;; esac\n  done\n")
	b.WriteString("  COMPREPLY=( $(compgen -W \"$(_drover_words \"$path\")\" -- \"$cur\") )\n}\n")
	b.WriteString("_drover_words() {\n  case \"$1\" in\n")
	for _, path := range sortedPaths(tree) {
		fmt.Fprintf(&b, "    %q) echo %q ;;\n", path, strings.Join(tree[path], " "))
	}
	b.WriteString("  esac\n}\ncomplete -F _drover drover\n")
	return b.String()
}

func fishCompletion(tree map[string][]string) string {
	var b strings.Builder
	b.WriteString("# fish completion for drover (drover completion fish)\ncomplete -c drover -f\n")
	for _, path := range sortedPaths(tree) {
		cond := "__fish_use_subcommand"
		if path != "" {
			words := strings.Fields(path)
			cond = fmt.Sprintf("__fish_seen_subcommand_from %s", words[len(words)-1])
		}
		for _, w := range tree[path] {
			if name, ok := strings.CutPrefix(w, "--"); ok {
				fmt.Fprintf(&b, "complete -c drover -n '%s' -l %s\n", cond, name)
			} else {
				fmt.Fprintf(&b, "complete -c drover -n '%s' -a %s\n", cond, w)
			}
		}
	}
	return b.String()
}

func sortedPaths(tree map[string][]string) []string {
	paths := make([]string, 0, len(tree))
	for p := range tree {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}
