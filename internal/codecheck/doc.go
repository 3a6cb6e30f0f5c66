// Package codecheck holds the tests that keep the source tree to the house
// rules no compiler checks: no function outside cmd/bench longer than
// MaxFuncLines, and no test that fails from a goroutine it started.
package codecheck

// MaxFuncLines is the most lines a function of the service may take, from
// its func keyword to its closing brace.
const MaxFuncLines = 80
