// Package eventstore adapts the events of package event to NATS JetStream: it
// appends them to the log and reads them back, per partition for the reducers
// and in order for replay. The log is the source of truth of the service:
// append-only, deduplicated by message id, and partitioned so that every
// event of one key lands in one partition.
//
// # Dead letters
//
// Events that cannot be folded are parked in a dead-letter stream beside the
// log (<stream>_DLQ), with why, so that their partition can move on. The log
// itself never changes: a parked event stays where it is, and retrying one
// appends it to the log again once it can be folded. Parking is idempotent
// within the duplicate window: the dead letter's message id is the event's
// sequence, so a reducer that parks an event and dies before its checkpoint
// moves past it parks it again and stores it once. A retry appends first and
// removes the dead letter after, so a retry cut short between the two leaves
// the event in both places and never in neither; folding it twice is
// harmless, as the read model counts a message id once.
package eventstore
