package queryapi

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"

	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
)

// Cache-Control of the answers of the query API. A list or count may change
// with every event folded, so a cache must ask again each time, which costs
// a 304 when nothing changed. A message never changes once visible.
const (
	cacheList    = "no-cache"
	cacheMessage = "private, max-age=300"
)

// conditional sets the ETag and Cache-Control of a list or count under tag
// ("" for all tags) and answers 304 when If-None-Match holds that ETag,
// reading no message; it returns false when it has answered. The ETag names
// the active generation and the checkpoints of the partitions the query
// reads, as read before the query: the answer can change only when one of
// them moves. prog holds checkpoints read already, for a request that waited
// on consistency tokens.
func (a *API) conditional(ctx context.Context, w http.ResponseWriter, r *http.Request, tag string, prog *readmodel.Progress) bool {
	if a.progress == nil {
		return true
	}
	var parts []int
	if tag != "" && a.cfg.Layout.Partitions > 0 {
		parts = []int{a.cfg.Layout.Partition(tag)}
	}
	if prog == nil {
		p, err := a.progress.Progress(ctx, parts...)
		if err != nil {
			a.fail(w, r, err)
			return false
		}
		prog = &p
	}
	et := listETag(*prog, parts)
	w.Header().Set("ETag", et)
	w.Header().Set("Cache-Control", cacheList)
	if noneMatch(r, et) {
		w.WriteHeader(http.StatusNotModified)
		return false
	}
	return true
}

// listETag is a weak entity tag: an answer reflects at least the events
// its checkpoints name, and may hold messages folded since.
func listETag(p readmodel.Progress, parts []int) string {
	if parts == nil {
		for part := range p.Folded {
			parts = append(parts, part)
		}
		slices.Sort(parts)
	}
	h := fnv.New64a()
	var b []byte
	for _, part := range parts {
		b = binary.AppendUvarint(b, uint64(part))
		b = binary.AppendUvarint(b, p.Folded[part])
	}
	_, _ = h.Write(b)
	return fmt.Sprintf(`W/"g%d-%016x"`, p.Generation, h.Sum64())
}

// writeMessage answers 200 with m, under a strong ETag of its
// representation, or 304 when If-None-Match holds that ETag.
func writeMessage(w http.ResponseWriter, r *http.Request, m message.Message) {
	body, err := json.Marshal(m)
	if err != nil {
		panic(err) // a message always encodes
	}
	h := fnv.New64a()
	_, _ = h.Write(body)
	tag := fmt.Sprintf(`"%016x"`, h.Sum64())
	w.Header().Set("ETag", tag)
	w.Header().Set("Cache-Control", cacheMessage)
	if noneMatch(r, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

// noneMatch reports whether If-None-Match names tag, by the weak
// comparison RFC 9110 prescribes for it, or is "*".
func noneMatch(r *http.Request, tag string) bool {
	want := strings.TrimPrefix(tag, "W/")
	for _, v := range r.Header.Values("If-None-Match") {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == want {
				return true
			}
		}
	}
	return false
}
