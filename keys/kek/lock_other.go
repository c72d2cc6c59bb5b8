//go:build !unix

package kek

// lockKeyFile is a no-op where flock is not available: on those systems two
// processes must not create or rotate the same key file at once.
func lockKeyFile(string) (func(), error) { return func() {}, nil }
