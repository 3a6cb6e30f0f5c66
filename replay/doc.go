// Package replay rebuilds the read model from the event log into a new
// generation while the active one keeps serving and updating, verifies it,
// and switches to it in one write.
//
// # A switch loses no event
//
// The new generation is folded from the log, up to its last sequence as it
// stands, while the reducers keep folding live traffic into the active one;
// each next pass folds what they added meanwhile, until the new generation
// has folded, in every partition, at least as far as the active one (or
// Options.CatchUpRounds passes have run). After each pass every partition's
// checkpoint in the new generation is the last sequence read, since every
// event up to it was read, whatever its partition. An event that cannot be
// folded is parked, unless it was parked already, as the reducers skipped it
// too. With From, the messages stored by events before it are copied from
// the active generation as they are.
//
// The switch is one write, of the document naming the active generation.
// A reducer asks which generation is active before every batch and every run
// of writes; once it sees the switch, it continues from the new generation's
// checkpoint and first catches up from the log on what that generation lacks.
// Events folded into the old generation after the last pass are thus folded
// into the new one as well, and folding is idempotent, so none is lost or
// counted twice. The old generation is dropped, with DropOld, only after
// DropGrace: the time every process is given to follow the switch (within a
// second) and to finish the batch in hand.
package replay
