package dispatcher

import (
	"net/http"

	"github.com/messages-io/messages/position"
)

// setToken sets the Consistency-Token of a 201: the place in the log of the
// event that stored the message, which a read may send back to see it.
func (a *API) setToken(w http.ResponseWriter, partition int, seq uint64) {
	if a.layout.Partitions == 0 || seq == 0 {
		return
	}
	tok := position.Token{Layout: a.layout, Partition: partition, Sequence: seq}
	w.Header().Set(position.TokenHeader, tok.String())
}
