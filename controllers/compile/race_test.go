//go:build race

package compile

// raceEnabled relaxes timing assertions under the race detector.
const raceEnabled = true
