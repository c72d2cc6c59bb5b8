//go:build unix

package kek

import (
	"fmt"
	"os"
	"syscall"
)

// lockKeyFile takes an exclusive flock on path+".lock", so that processes
// sharing a key file (fieldvault serve and fieldvault keys rotate-kek) never
// create or rotate it at the same time and lose a version. The returned
// function releases the lock.
func lockKeyFile(path string) (func(), error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("kek/local: opening lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("kek/local: locking %s.lock: %w", path, err)
	}
	return func() {
		// Closing the descriptor releases the flock.
		f.Close()
	}, nil
}
