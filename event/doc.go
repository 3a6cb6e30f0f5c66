// Package event defines the envelope every event of the log shares, its JSON
// encoding, and the upcasters that read an old shape of an event as the
// current one. It knows nothing of where events are stored: eventstore
// adapts it to NATS JetStream.
//
// # Upcasting
//
// Events are never changed in place: when the shape of an event type changes,
// its version goes up, and an upcaster turns each older shape into the next
// one as the event is read. A log that mixes versions folds as if every event
// were written in the current shape.
package event
