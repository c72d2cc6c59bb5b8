package store

import (
	"context"
	"sync"
)

// Gate admits a store's operations until the store closes: Enter fails
// with ErrClosed once Close has begun, and Close waits for the operations
// in flight, so none runs against a closed backend. The zero Gate is open.
type Gate struct {
	mu     sync.RWMutex // held for reading by operations, for writing by Close
	closed bool
}

// Enter starts an operation; a nil error must be paired with Leave.
func (g *Gate) Enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Leave ends an operation started by Enter.
func (g *Gate) Leave() { g.mu.RUnlock() }

// Close waits for the operations in flight, then runs release once; a
// second Close returns ErrClosed.
func (g *Gate) Close(release func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	g.closed = true
	return release()
}
