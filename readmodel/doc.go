// Package readmodel keeps the MongoDB read model that reducers fold the event
// log into, and answers the queries of the query API from it: messages by id,
// newest-first pages under tag and time filters, and counts.
//
// # Every read by _id
//
// Every query reads a bounded number of documents, each by its _id, so that
// it costs the same at ten thousand and ten million messages on any
// MongoDB-wire store, including one that indexes nothing but _id (the
// embedded FerretDB). A generation keeps four collections:
//
//   - messages: one document per message, under its id, for GET by id;
//   - slots: the ids of the messages again, grouped in slots (MongoDB's
//     bucket pattern) for lists and counts;
//   - counts: per key, one document a year with a count per day, for counts
//     of whole days;
//   - checkpoints: per partition, the sequence of the last event folded.
//
// # Slots
//
// A key is a tag, or all tags of one partition. The slots of a key form a
// tree over the ids of its messages. Ids are ULIDs, which sort by time, so
// the ids under a prefix are a span of time: the root's children are named
// by four characters (about 12 days), and each level below by one more (9.3
// hours, 17.5 minutes, 33 s, 1 s, 32 ms, 1 ms, then the random characters of
// ids made in the same millisecond). A leaf slot holds up to LeafCap
// message ids, each with the sequence of the event that placed it; when one
// more arrives, the leaf becomes an inner slot holding the number of
// messages under each of its children, and its ids move down to them, as
// deep as it takes for each child to hold no more than LeafCap. A rare tag
// lives in one slot; a dense hour splits down to seconds and below. A slot
// holds ids rather than whole messages so that it stays a few kilobytes:
// a store that rewrites a document to change it, as FerretDB does, rewrites
// little per message folded. A leaf packs its ids into strings, one run per
// write that added some, because such a store also converts a document
// field by field: a leaf of a few strings reads and writes several times
// faster than one of a field per message. Reading a leaf merges its runs;
// rewriting it leaves one, and its writer rewrites a leaf it knows to hold
// 32 runs, so that a live trickle of a message a write does not grow it a
// field per message.
//
// A page walks the tree of its key newest first, from the cursor or the end
// of the range down, skipping whole children outside the range by their
// name alone; without a tag it merges the walks of every partition's key.
// It reads the slots on the way to its first message and those that hold
// its ids, wherever the cursor stands, and then its messages by id, several
// at once. A count of a range that is not whole days walks, per key, down
// from the root while both ends of the range lie under one child, then
// down each end's path alone: whole children between the ends are counted
// from their parent's numbers, and only the leaves at the ends count ids,
// so it reads at most two paths per key, sharing their top. A count of
// whole days reads the year documents of the day counts.
//
// # Exactly once, without transactions
//
// One reducer folds a partition, in log order, and every key belongs to
// one partition, so each slot and count document has a single writer. A
// batch is written in this order: messages, slots, counts, checkpoint; the
// reducer acknowledges the batch after the checkpoint. The slot writes, and
// then the count writes, go out as ordered bulk writes: the store applies
// them one after another and stops at the first that fails, so they cost a
// command or two per batch, and a cut leaves a prefix of them, as separate
// commands would. A crash between any two writes brings the batch back,
// whole or cut differently, and each write is such that doing it again
// changes nothing:
//
//   - A message is inserted under its id, in one unordered insert that
//     names every message of the batch stored before. The event that
//     stored it is recorded beside it and in its slot, so that another
//     event of the same id, such as a repeated import, is recognised and
//     counted nowhere.
//   - A message's id is set in its slot. The number an inner slot
//     holds for a child is the count of what is stored under that child,
//     computed from the child as written, never an increment; it is raised
//     with $max, so a writer that read an older state cannot lower it.
//     Children are written before their parent, so a reader, who walks
//     down from the root, meets a slot only once what is under it is
//     stored. A split writes the children whole, then turns the parent
//     inner; a split cut short leaves the parent a leaf with its ids,
//     and slots below it that no walk reaches and the next split
//     overwrites.
//   - A batch none of whose messages was stored before adds its ids to
//     its leaves as new runs, without reading them, trusting the numbers
//     of their parents. A run is named by the least sequence in it, so
//     writing it again rewrites the same field: a leaf
//     with messages its parent does not count yet holds messages of an
//     attempt that died after storing every message of its batch (slots
//     are written only then), and those come back in batches that find
//     their messages stored, read every slot they touch, and count it
//     afresh. A slot holds at most LeafCap messages when its parent counts
//     no more, so the number also tells a leaf from an inner slot.
//   - A day count document records the sequence of the last event it
//     counted; an event at or before it was counted already. Counts only
//     grow, and are raised with $max.
//   - The writer of a partition keeps what it wrote last of each slot and
//     count document, and the next batch writes them from that without
//     reading them: a live batch of a few events then costs a write per
//     document it changes. It trusts that knowledge only while the
//     partition's checkpoint is the one it wrote last, and only for a batch
//     none of whose messages was stored before; a batch that finds some
//     stored reads every slot it touches, and a failed attempt forgets all.
//     Another writer that folded a batch meanwhile moved the checkpoint; one
//     that died within a batch stored its messages before any slot, so the
//     batch comes back finding them stored.
//
// Between the writes of one batch a reader can see a message listed before
// the counts include it. A later event that removes a message would set a
// tombstone in its slot, and the numbers of its parents would count
// tombstones apart, both growing, so that removal too is exactly once.
//
// # Generations
//
// The read model is kept in generations. One is active: the query API reads
// it and the reducers fold into it. A replay builds a new generation from the
// log beside it while it keeps serving, then makes the new one active in one
// write. Every process follows the switch within a second, without restart.
// Why a switch loses no event is told in package replay.
//
// # Day counts
//
// Counts are kept per UTC day, under one tag and across all tags, so that a
// count over any range reads whole days from a few small documents, however
// many messages the days hold. A range with an edge inside a day is counted
// from the slots instead (see Slots).
//
// One document holds the days of one year under one key, as fields named
// by month and day ("03-15"): a count over a year reads one or two
// documents per key, and a batch of events spread over a year of history
// changes one document per key where one per day would change hundreds. A
// full year is 366 numbers, a few kilobytes.
//
// A count is read by _id alone, which every MongoDB-wire store serves as a
// point lookup: the documents of a key are named by key and year, and the
// years and partitions that hold counts are kept in one more document,
// widened before any count outside them is written. It is widened by
// inserting its next version, never by updating it in place: a store that
// runs an update as a read and then a write, as the embedded FerretDB
// does, would lose one of two partitions widening it at once (see span.go).
//
// A count document is changed by one partition only: a tag lives in one
// partition, and the all-tags counts are kept per partition and summed when
// read. Each document records the sequence of the last event it counted;
// since a partition is folded in log order, an event at or before that
// sequence was counted already. That makes counting exactly-once without
// transactions, whatever failed between the writes of a batch.
package readmodel
