// Command messages runs every role of the messages service: the write API
// (dispatcher), the reducers, the query API, or all of them at once on
// embedded infrastructure (dev).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr})
	if code := exitCode(err); code != 0 {
		if code != 2 {
			fmt.Fprintln(os.Stderr, "messages:", err)
		}
		os.Exit(code)
	}
}

// exitCode is the process status for what run returned: 0 for success or
// help, 2 for a usage error (already explained), 3 for a read model behind
// the log (verify --caught-up), 1 for any other error.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errBehind):
		return 3
	}
	return 1
}

// env is what a command takes from its surroundings; tests supply their own.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	// now stamps new messages; time.Now when nil.
	now func() time.Time
	// ready, when set, is told the addresses a server role listens on once
	// it serves.
	ready func(Addrs)
}

// Addrs are the addresses a running role serves on.
type Addrs struct {
	API   string // host:port of the HTTP API
	NATS  string // nats:// URL, for dev
	Mongo string // mongodb:// URI, for dev
}

// errUsage marks errors whose explanation was already printed with usage.
var errUsage = errors.New("usage")

type command struct {
	name, short, usage string
	run                func(ctx context.Context, args []string, e env) error
}

func commands() []command {
	return []command{
		{"dev", "run every role in one process on embedded NATS and FerretDB", "messages dev [flags]", runDev},
		{"dispatcher", "run the write API: POST /v1/messages into the event log", "messages dispatcher [flags]", runDispatcher},
		{"reducer", "fold the event log into the read model", "messages reducer [flags]", runReducer},
		{"query", "run the read API: GET /v1/messages from the read model", "messages query [flags]", runQuery},
		{"gateway", "run the public entry point: bearer tokens, rate limits, routing to the services", "messages gateway [flags]", runGateway},
		{"token", "print a token signed with the gateway's HS256 secret, for local use", "messages token --user ID [--role R] [--ttl D]", runToken},
		{"import", "append messages from a JSON Lines file (or - for standard input) to the event log", "messages import [flags] FILE", runImport},
		{"replay", "rebuild the read model from the log into a new generation and switch to it", replayUsage, runReplay},
		{"dlq", "list, show, retry or discard events parked because they could not be folded", "messages dlq list|show|retry|discard [flags]", runDLQ},
		{"verify", "compare a read model generation with the event log; exit 1 on any difference", verifyUsage, runVerify},
		{"events", "inspect the event log: tail it live, get one event, stats per partition and consumer", "messages events tail|get|stats [flags]", runEvents},
		{"post", "post a message through the HTTP API", "messages post --tag TAG [--user ID | --token T] [flags] TEXT", runPost},
		{"list", "list messages through the HTTP API, newest first", "messages list [--tag TAG] [--since T] [--until T] [--limit N | --all] [--json] [flags]", runList},
		{"count", "count messages through the HTTP API", "messages count [--tag TAG] [--since T] [--until T] [flags]", runCount},
		{"watch", "print messages as they are posted, through the HTTP API's live stream", "messages watch [--tag TAG] [--after POSITION] [--json] [flags]", runWatch},
	}
}

func run(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		out := e.stdout
		if len(args) == 0 {
			out = e.stderr
		}
		printUsage(out)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], e)
		}
	}
	fmt.Fprintf(e.stderr, "messages: unknown command %q\n\n", args[0])
	printUsage(e.stderr)
	return errUsage
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `messages: a CQRS / event-sourced service for short tagged messages.

Usage:
  messages <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.short)
	}
	fmt.Fprint(w, `
Every flag can also be set as an environment variable: --nats-url is
MESSAGES_NATS_URL. A flag on the command line wins over the environment.

Examples:
  messages dev                                 # everything, data in ./data
  messages dispatcher --nats-url nats://n1:4222
  messages reducer --mongo-uri mongodb://db1,db2,db3/?replicaSet=rs0
  messages query --addr :8082

Run 'messages <command> --help' for the flags of a command.
`)
}
