package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	var g Gate
	ctx, cancel := context.WithCancel(context.Background())
	if err := g.Enter(ctx); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	closed := make(chan error)
	go func() {
		closed <- g.Close(func() error { close(released); return nil })
	}()
	select {
	case <-released:
		t.Fatal("Close released the backend while an operation was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	g.Leave()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := g.Enter(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enter after Close: %v, want ErrClosed", err)
	}
	if err := g.Close(func() error { t.Fatal("released twice"); return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	cancel()
	var open Gate
	if err := open.Enter(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Enter with a cancelled context: %v", err)
	}
}
