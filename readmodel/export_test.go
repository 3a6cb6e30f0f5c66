package readmodel

// SetLeafCap makes the slots of s split past n messages, so that tests
// reach deep slots with few messages.
func SetLeafCap(s *Store, n int) { s.leafCap = n }
