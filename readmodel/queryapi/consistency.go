package queryapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/messages-io/messages/position"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/web"
)

// Progress reads how far the active generation of the read model has folded
// the log: the checkpoints of the given partitions, or of all.
type Progress interface {
	Progress(ctx context.Context, partitions ...int) (readmodel.Progress, error)
}

// Bounds of Config.ConsistencyWait.
const (
	DefaultConsistencyWait = 2 * time.Second
	MaxConsistencyWait     = 10 * time.Second
)

// NotYetConsistentType is the problem type of a 503 to a read whose
// consistency tokens the read model had not folded within the wait: the
// writes are in the log and will be visible; retry after Retry-After.
const NotYetConsistentType = "urn:messages:problem:not-yet-consistent"

// await makes a read that carries Consistency-Token headers wait until the
// active generation has folded every write they name. It returns the
// checkpoints read once they have (nil without tokens), and false when it
// has answered the request itself: 400 for a token that is malformed or of
// another log, 503 when the fold stays behind for the whole wait.
func (a *API) await(w http.ResponseWriter, r *http.Request) (*readmodel.Progress, bool) {
	values := r.Header.Values(position.TokenHeader)
	if len(values) == 0 {
		return nil, true
	}
	if a.cfg.Layout.Partitions == 0 || a.folds == nil {
		web.WriteProblem(w, r, http.StatusBadRequest, "this query instance does not know the layout of the log, so it takes no Consistency-Token")
		return nil, false
	}
	need, err := position.ParseTokens(values, a.cfg.Layout)
	if err != nil {
		web.WriteProblem(w, r, http.StatusBadRequest, "Consistency-Token: "+tokenError(err))
		return nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.ConsistencyWait)
	defer cancel()
	start := time.Now()
	p, err := a.folds.wait(ctx, need)
	a.metrics.tokenWait.Observe(time.Since(start).Seconds())
	if err == nil {
		return &p, true
	}
	if errors.Is(err, context.DeadlineExceeded) && p.Folded == nil && r.Context().Err() == nil {
		// The wait ended before a read of the checkpoints did, as on a
		// store that answers slowly: one read says how far behind it is.
		rctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
		p, err = a.progress.Progress(rctx)
		cancel()
		if err == nil && folded(p, need) {
			return &p, true
		}
		if err == nil {
			err = ctx.Err()
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) || p.Folded == nil {
		a.fail(w, r, err)
		return nil, false
	}
	// The read model answers, and is behind the writes named.
	kind := web.Failure{
		Log:             a.log,
		What:            "consistent read",
		RetryAfter:      a.cfg.RetryAfter,
		UnavailableType: NotYetConsistentType,
		Unavailable:     fmt.Sprintf("the read model has not folded these writes within %s: %s", a.cfg.ConsistencyWait, behind(p, need)),
	}.Answer(w, r, err)
	if kind == web.KindUnavailable {
		a.metrics.tokenTimeouts.Inc()
	}
	return nil, false
}

func tokenError(err error) string {
	switch {
	case errors.Is(err, position.ErrOtherLog):
		return "a token names another log: " + err.Error()
	case errors.Is(err, position.ErrMalformed):
		return "not a token this service gave out"
	}
	return err.Error()
}

// behind says, for each partition that has not folded what need asks of
// it, how far it is.
func behind(p readmodel.Progress, need map[int]uint64) string {
	parts := make([]int, 0, len(need))
	for part := range need {
		parts = append(parts, part)
	}
	slices.Sort(parts)
	var out []string
	for _, part := range parts {
		have := p.Folded[part]
		if have >= need[part] {
			continue
		}
		s := fmt.Sprintf("partition %d has folded through sequence %d and the token needs %d", part, have, need[part])
		if at, ok := p.MovedAt[part]; ok {
			s += fmt.Sprintf(" (its checkpoint last moved %s ago)", time.Since(at).Round(time.Millisecond))
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// folded reports whether p has folded what need asks.
func folded(p readmodel.Progress, need map[int]uint64) bool {
	for part, seq := range need {
		if p.Folded[part] < seq {
			return false
		}
	}
	return true
}

// watermarks reads the checkpoints of every partition for everyone who
// waits on them, every interval while anyone does, and not at all
// otherwise: many requests waiting at once cost one read per interval.
type watermarks struct {
	src   Progress
	every time.Duration

	mu      sync.Mutex
	last    readmodel.Progress
	err     error
	read    chan struct{} // closed when the read in progress is done
	waiting int
	polling bool
}

func newWatermarks(src Progress, every time.Duration) *watermarks {
	return &watermarks{src: src, every: every, read: make(chan struct{})}
}

// wait returns the checkpoints once they reach need, or the last ones read
// and ctx's error when ctx ends first.
func (w *watermarks) wait(ctx context.Context, need map[int]uint64) (readmodel.Progress, error) {
	w.mu.Lock()
	w.waiting++
	if !w.polling {
		w.polling = true
		go w.poll()
	}
	read := w.read
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.waiting--
		w.mu.Unlock()
	}()
	var last readmodel.Progress
	for {
		select {
		case <-read:
		case <-ctx.Done():
			return last, ctx.Err()
		}
		w.mu.Lock()
		p, err := w.last, w.err
		read = w.read
		w.mu.Unlock()
		if err == nil {
			last = p
			if folded(p, need) {
				return p, nil
			}
		}
	}
}

// poll reads the checkpoints until no one waits.
func (w *watermarks) poll() {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p, err := w.src.Progress(ctx)
		cancel()
		w.mu.Lock()
		w.last, w.err = p, err
		close(w.read)
		w.read = make(chan struct{})
		if w.waiting == 0 {
			w.polling = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		time.Sleep(w.every)
	}
}
