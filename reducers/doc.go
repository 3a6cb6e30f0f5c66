// Package reducers folds the event log into the read model: one reducer per
// partition takes the partition's events in log order, in batches, applies
// them to the read model and acknowledges them only once they are written.
//
// # Progress on a slow store
//
// A reducer keeps moving whenever the store can write at least one event
// within an attempt's deadline. A failed write halves the most events it
// writes at once, down to one, so repeated failures reach a size that fits.
// A full-sized write done in a quarter of the deadline doubles it again, up
// to the batch size, but back to the size that failed only after a run of
// such writes, so that a store that fails above some size (as FerretDB's
// bulk writes of a hundred updates or more hung) is tried there seldom. A
// batch is written as runs of that size, each with its checkpoint, so a
// crash sends back at most one run already written.
//
// A write that missed its deadline is not stopped in the store: the command
// in hand when the client gave up runs on (on the embedded FerretDB, an
// insertMany given up after 0.4 s went on inserting for 7 s). Sending the
// batch again at once would make it contend with that command and miss its
// deadline too, piling up work. So a reducer never has more than one write
// in flight, and after a failure it waits at least half as long as the
// failed attempt ran, then first writes the checkpoint alone: only once the
// store answers that within the deadline are the events sent again, so a
// store that is jammed is asked for little. The deadline starts once the
// reducer holds a write slot, so queueing behind the other partitions of
// its process costs it nothing. Once its turn comes, a reducer takes into
// the write the events delivered while it waited, up to its batch limit:
// where partitions take turns, an event that arrives during the wait is
// written in that turn instead of waiting a whole round of turns more. At
// 1,000 messages a second on the embedded FerretDB, the median time from a
// 201 to a read that shows the message fell from 151–207 ms to 66–100 ms
// (six runs before, four after, on a shared machine).
//
// # Events that cannot be folded
//
// An event that cannot be folded stops its batch there: the events before it
// are applied and acknowledged, and it and the rest go back to JetStream to
// be tried again after a backoff. After MaxAttempts it is parked in the
// dead-letter stream (see package eventstore), then the checkpoint moves past
// it, and only then is it acknowledged; without a place to park it, the
// partition halts on it and reports it. So an event is never acknowledged
// unless it is applied or parked, and a crash anywhere in between brings it
// back to be tried again.
package reducers
