// Package eventstore adapts the events of package event to NATS JetStream: it
// appends them to the log and reads them back, per partition for the reducers
// and in order for replay. The log is the source of truth of the service:
// append-only, deduplicated by message id, and partitioned so that every
// event of one key lands in one partition.
package eventstore
