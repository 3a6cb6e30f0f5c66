package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/messages-io/messages/embedded"
	"github.com/messages-io/messages/eventstore"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// envName is the environment variable that sets a flag: --nats-url is
// MESSAGES_NATS_URL.
func envName(flagName string) string {
	return "MESSAGES_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse reads args into fs, then fills each flag not given on the command
// line from its environment variable.
func parse(fs *flag.FlagSet, c command, args []string, e env) error {
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "%s\n\nUsage:\n  %s\n\nFlags (each also settable as the environment variable shown):\n", c.short, c.usage)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(out, "  --%s  [%s]%s\n      %s\n", f.Name, envName(f.Name), def, f.Usage)
		})
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	// A flag that does not parse is told in one line, not with the usage.
	fs.SetOutput(io.Discard)
	perr := fs.Parse(args)
	fs.SetOutput(e.stderr)
	if perr != nil {
		fmt.Fprintf(e.stderr, "messages %s: %s ('messages %s --help' lists the flags)\n", c.name, doubleDash(perr), c.name)
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "messages %s: unexpected argument %q\n", c.name, fs.Arg(0))
		return errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v := e.getenv(envName(f.Name)); v != "" {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %v", envName(f.Name), v, serr)
			}
		}
	})
	return err
}

// doubleDash returns the message of an error of fs.Parse with its flag
// named as the help names it, --name rather than -name.
func doubleDash(err error) string {
	msg := err.Error()
	for _, before := range []string{"for flag -", "not defined: -", "needs an argument: -"} {
		if i := strings.Index(msg, before); i >= 0 {
			at := i + len(before)
			return msg[:at] + "-" + msg[at:]
		}
	}
	return msg
}

// logFlags configure the process log.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "least severe log level written: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
}

func (l logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", l.format)
}

// streamFlags describe the event log every role opens.
type streamFlags struct {
	natsURL string
	cfg     eventstore.Config
}

func (s *streamFlags) register(fs *flag.FlagSet, withURL bool) {
	def := eventstore.DefaultConfig()
	if withURL {
		registerNATSURL(fs, &s.natsURL)
	}
	registerStream(fs, &s.cfg.Stream)
	fs.StringVar(&s.cfg.SubjectPrefix, "subject-prefix", def.SubjectPrefix, "subject prefix of events: <prefix>.<partition>.<type>")
	fs.IntVar(&s.cfg.Partitions, "partitions", def.Partitions, "partitions of the log, 1-1024; fixed when the stream is created")
	fs.Var(unset[int]{&s.cfg.Replicas, strconv.Atoi}, "replicas", fmt.Sprintf("stream replicas, 1-5: 1 for one server, 3 or 5 in a cluster; unset, an existing stream keeps its own and a new one gets %d", def.Replicas))
	fs.Var(unset[time.Duration]{&s.cfg.DuplicateWindow, time.ParseDuration}, "dedup-window", fmt.Sprintf("how long a repeated append or Idempotency-Key is recognised; at least 1s and longer than --append-timeout; unset, an existing stream keeps its own and a new one gets %s", def.DuplicateWindow))
}

// unset is a flag whose zero value means not given: it shows no default,
// and the zero is left for the package that reads it to fill.
type unset[T int | time.Duration] struct {
	v     *T
	parse func(string) (T, error)
}

func (u unset[T]) String() string {
	if u.v == nil || *u.v == 0 {
		return ""
	}
	return fmt.Sprint(*u.v)
}

func (u unset[T]) Set(s string) error {
	v, err := u.parse(s)
	if err != nil {
		return errors.New("parse error")
	}
	*u.v = v
	return nil
}

// registerNATSURL adds --nats-url, the NATS servers of the event log.
func registerNATSURL(fs *flag.FlagSet, url *string) {
	fs.StringVar(url, "nats-url", nats.DefaultURL, "NATS server URL(s), comma-separated")
}

// registerStream adds --stream, the stream of the event log.
func registerStream(fs *flag.FlagSet, stream *string) {
	fs.StringVar(stream, "stream", eventstore.DefaultConfig().Stream, "JetStream stream holding the event log")
}

// storeFlags describe the read model.
type storeFlags struct {
	uri string
	db  string
}

func (s *storeFlags) register(fs *flag.FlagSet, withURI bool) {
	if withURI {
		fs.StringVar(&s.uri, "mongo-uri", "mongodb://127.0.0.1:27017/", "MongoDB connection string of the read model")
	}
	fs.StringVar(&s.db, "mongo-db", "messages", "MongoDB database of the read model")
}

// serverFlags describe the HTTP listener of a role.
type serverFlags struct {
	addr            string
	shutdownTimeout time.Duration
	pprof           bool
}

func (s *serverFlags) register(fs *flag.FlagSet, addr string) {
	fs.StringVar(&s.addr, "addr", addr, "HTTP listen address")
	fs.DurationVar(&s.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long shutdown waits for requests in flight")
	fs.BoolVar(&s.pprof, "pprof", false, "serve the Go runtime's profiles under /debug/pprof/ (keep the address private)")
}

// syncFlag is the embedded NATS server's fsync policy: always, or a
// duration between fsyncs.
type syncFlag struct{ embedded.Sync }

func (s *syncFlag) String() string { return s.Sync.String() }

func (s *syncFlag) Set(v string) error {
	p, err := embedded.ParseSync(v)
	if err != nil {
		return errors.New("want always or a duration such as 2m")
	}
	s.Sync = p
	return nil
}

// syncMeaning says what an acknowledgement of the running server ns
// promises under its fsync policy.
func syncMeaning(ns *server.Server) string {
	cfg := ns.JetStreamConfig()
	if cfg == nil {
		return "unknown: JetStream is off"
	}
	if cfg.SyncAlways {
		return "always: a 201 is on disk"
	}
	return "every " + cfg.SyncInterval.String() + ": a 201 survives a crash of this process, not of the machine, until the next fsync"
}
