package readmodel

// SetLeafCap makes the slots of s split past n messages, so that tests
// reach deep slots with few messages.
func SetLeafCap(s *Store, n int) { s.leafCap = n }

// SetBulk makes s send at most n writes in one command, so that tests can
// cut a batch between any two of them.
func SetBulk(s *Store, n int) { s.bulk = n }

// SetInsertChunk makes s insert at most n messages in one command, so that
// tests can cut a batch between two inserts.
func SetInsertChunk(s *Store, n int) { s.insertChunk = n }
