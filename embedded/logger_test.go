package embedded

import (
	"bytes"
	"log/slog"
	"testing"
)

// withCounter counts the loggers made on the handler it wraps.
type withCounter struct {
	slog.Handler
	made *int
}

func (c withCounter) WithAttrs(attrs []slog.Attr) slog.Handler {
	*c.made++
	return withCounter{c.Handler.WithAttrs(attrs), c.made}
}

func (c withCounter) WithGroup(name string) slog.Handler {
	*c.made++
	return withCounter{c.Handler.WithGroup(name), c.made}
}

// A logger made for a statement logged below the level formats nothing; one
// whose record is handled writes what the wrapped handler would have.
func TestLoggersAreFormattedOnlyForRecordsHandled(t *testing.T) {
	opts := &slog.HandlerOptions{
		Level: slog.LevelError,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}
	var direct, lazy bytes.Buffer
	made := 0
	base := slog.New(lazyHandler{h: withCounter{slog.NewTextHandler(&lazy, opts), &made}}).With("component", "ferretdb")
	statement := func(l *slog.Logger) *slog.Logger {
		return l.WithGroup("sql").With("args", []any{`{"_id":"01J"}`, 7})
	}
	for range 3 {
		statement(base).Debug(">>> INSERT")
	}
	if made != 0 || lazy.Len() != 0 {
		t.Fatalf("debug statements made %d loggers and wrote %q", made, lazy.String())
	}

	statement(base).With("rows", 0).Error("<<< INSERT", "err", "disk full")
	statement(slog.New(slog.NewTextHandler(&direct, opts)).With("component", "ferretdb")).
		With("rows", 0).Error("<<< INSERT", "err", "disk full")
	if lazy.String() != direct.String() {
		t.Errorf("wrote\n%s\nwant\n%s", lazy.String(), direct.String())
	}
	if made == 0 {
		t.Error("the record handled was formatted without its logger's attributes")
	}
}
