package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/messages-io/messages/web"
)

type ctxKey int

const (
	identityKey ctxKey = iota
	exchangeKey
)

func withIdentity(ctx context.Context, id identity) context.Context {
	return context.WithValue(ctx, identityKey, id)
}

// identityFrom returns the identity that authorized put in ctx.
func identityFrom(ctx context.Context) identity {
	id, _ := ctx.Value(identityKey).(identity)
	return id
}

// exchange is what the access log learns while a request is served.
type exchange struct {
	user     string // the verified user
	upstream string // host:port of the upstream last asked
	stream   bool   // a live stream, passed through as it came
}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey).(*exchange)
	return x
}

// accessLog logs every request once answered: method, path, status, time,
// request id, the verified user and the upstream that served it. A client's
// own X-User-ID is dropped before anything sees it. Health, readiness and
// metrics requests are logged at debug level, the rest at info. A request
// its client abandoned before it was answered is logged as 499, as web.Observe
// records it.
func (g *Gateway) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stripUserID(r.Header)
		start := time.Now()
		x := &exchange{}
		rec := &web.StatusRecorder{ResponseWriter: w}
		defer func() {
			status := rec.Recorded(r)
			v := recover()
			if v != nil && !(v == http.ErrAbortHandler && x.stream && status == http.StatusOK) {
				// The response was cut short; a live stream ends so
				// whenever its client or upstream leaves.
				status = 0
			}
			level := slog.LevelInfo
			if !strings.HasPrefix(r.URL.Path, "/v1/") {
				level = slog.LevelDebug
			}
			g.log.Log(r.Context(), level, "access",
				"method", r.Method, "path", r.URL.Path, "status", status, "duration", time.Since(start),
				"request_id", web.RequestID(r.Context()), "user_id", x.user, "upstream", x.upstream,
				"remote", r.RemoteAddr, "stream", x.stream)
			if v != nil {
				panic(v)
			}
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), exchangeKey, x)))
	})
}
