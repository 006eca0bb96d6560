//go:build race

package server

// raceOn is true in a build with the race detector, which makes the
// redactor's loops some twenty times slower.
const raceOn = true
