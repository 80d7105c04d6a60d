//go:build race

package server

// raceEnabled: the race detector slows byte-by-byte work about tenfold, so
// the tests that push megabytes through the server push fewer of them.
const raceEnabled = true
