// Package embedded runs the infrastructure the service stands on inside the
// calling process: a NATS server with JetStream for the event log, and
// FerretDB over SQLite as the MongoDB-wire read model store. It serves the
// dev role and the tests; production runs real clusters instead.
//
// # Reads by _id
//
// FerretDB 1.24 over SQLite keeps each collection as a table of JSON
// documents. It pushes a filter on _id alone down to SQLite as
// `_ferretdb_sjson->'$._id' = ?`, but builds the table's _id index on
// `_ferretdb_sjson->"_id"`, an expression SQLite does not take for the same
// one. So every find, update or delete by _id scans and parses the whole
// table: on a table of 20,000 small documents one update by _id took 43 ms.
//
// The embedded server mends that by giving every collection's table a
// unique index on the very expression of the pushdown (0.7 ms for the same
// update) in place of FerretDB's own index of _id, in one transaction, so
// that an insert keeps one index of _id instead of two. FerretDB takes any
// unique constraint SQLite reports for a duplicate _id, so the kept index
// refuses a second document with the same _id as FerretDB's did. FerretDB
// neither lists nor drops the index; dropping the collection drops the
// table and it with it.
package embedded
