package main

import (
	"context"
	"fmt"
	"io"
)

// group is a command made of subcommands, such as `messages events`.
type group struct {
	name     string
	intro    string // one sentence on what the subcommands are for
	examples string // example lines, indented
	commands []command
}

// run runs the subcommand args name, or prints the usage.
func (g group) run(ctx context.Context, args []string, e env) error {
	if len(args) > 0 {
		for _, c := range g.commands {
			if c.name == args[0] {
				c.name = g.name + " " + c.name
				return c.run(ctx, args[1:], e)
			}
		}
	}
	switch {
	case len(args) == 0:
		g.usage(e.stderr)
		return errUsage
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		g.usage(e.stdout)
		return nil
	}
	fmt.Fprintf(e.stderr, "messages %s: unknown subcommand %q\n\n", g.name, args[0])
	g.usage(e.stderr)
	return errUsage
}

func (g group) usage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  messages %s <subcommand> [flags]\n\nSubcommands:\n", g.intro, g.name)
	for _, c := range g.commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.short)
	}
	if g.examples != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", g.examples)
	}
	fmt.Fprintf(w, "\nRun 'messages %s <subcommand> --help' for its flags.\n", g.name)
}

// command returns the subcommand name, named with its group.
func (g group) command(name string) command {
	for _, c := range g.commands {
		if c.name == name {
			c.name = g.name + " " + name
			return c
		}
	}
	panic("no subcommand " + g.name + " " + name)
}
