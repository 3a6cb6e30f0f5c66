package client

const consistencyTokenHeader = "Consistency-Token"

// ConsistencyToken stores in *dst the consistency token of a post's answer:
// an opaque string naming the write's place in the event log. A read given
// it with ReadAfter reflects the write. A post that its Idempotency-Key
// recognised gets the first write's token.
func ConsistencyToken(dst *string) CallOption { return func(c *call) { c.written = dst } }

// ReadAfter makes a read (Get, Count, or every page of List) reflect at
// least the writes whose consistency tokens it is given, at most 64: the
// service waits a bounded time for its read model to fold them, and answers
// 503, which the retry policy retries, when it has not. Empty tokens are
// left out.
func ReadAfter(tokens ...string) CallOption {
	return func(c *call) {
		for _, t := range tokens {
			if t != "" {
				c.readAfter = append(c.readAfter, t)
			}
		}
	}
}
