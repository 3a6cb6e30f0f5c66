// Package audit compares a read model generation with the event log: it folds
// the log on its own, exactly as the reducers do, and reports every message
// missing from the model, unexpected in it or different, every stored day
// count that differs from the fold, every tag and day whose messages in the
// slots of the tag or of all tags are not the fold's, every number of an
// inner slot that is not what its child holds, and every event that cannot
// be folded and is not parked in the dead-letter stream.
//
// # Bounded memory
//
// Neither side is loaded whole. The comparison streams the log and the model
// into buckets, one per tag and UTC day, each holding a count and an
// order-independent digest (the sum, modulo 2^64, of a keyed 64-bit hash of
// each message's id, user, text, tag and creation time). Buckets that agree
// are done with. Only for the buckets whose count or digest differ does it
// read both sides again and find the exact messages, holding at most
// Options.MaxHeld of the log's messages at a time (more rounds when more
// differ).
//
// A message id logged twice is stored once, by its first event. To recognise
// the later events without a set of every id, the fold keeps a Bloom filter
// of the ids seen (about 1.8 bytes per event, one false match in a thousand):
// ids it may have seen before are noted, and only if there are any does a
// second pass over the log, holding just those ids, tell true repeats from
// false matches and take the repeats out of their buckets. An exact set of
// every id would cost about 40 bytes per event instead.
//
// # A model that is being written
//
// The reducers keep folding while a comparison runs. It compares the log
// only up to a consistent point: unless Options.Through names one, each
// partition's checkpoint as read before anything else. Every event up to a
// checkpoint is written with its counts, as the reducers write messages,
// then counts, then the checkpoint. Messages of the model stored by a later
// event are in flight and not compared. The day counts are read before the
// messages, so every in-flight event they include has its message in the
// model when the messages are read; a count is therefore right if it is at
// least the fold's and at most that plus the in-flight messages of its
// bucket. While the model is being written a count is checked to within its
// in-flight messages; with the writers stopped, exactly.
//
// Across partitions, folding does not follow log order: if one message id
// were logged under two tags in different partitions (which the write API
// never does), the model may hold either event's message, and a comparison
// expects the first one.
package audit
