package main

import (
	"io"
	"sync"
)

// logWriter hands log lines to a goroutine that writes whatever has queued
// up in one write. A line is written as soon as the goroutine is free, so
// nothing waits for a timer; under load, many access-log lines share one
// write system call instead of costing one each. Close writes what is left.
type logWriter struct {
	w       io.Writer
	mu      sync.Mutex
	buf     []byte
	pending chan struct{}
	closed  bool
	done    chan struct{}
}

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{w: w, pending: make(chan struct{}, 1), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	l.mu.Unlock()
	select {
	case l.pending <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *logWriter) run() {
	defer close(l.done)
	var out []byte
	for range l.pending {
		l.mu.Lock()
		out, l.buf = l.buf, out[:0]
		closed := l.closed
		l.mu.Unlock()
		if len(out) > 0 {
			_, _ = l.w.Write(out)
		}
		if closed {
			return
		}
	}
}

// Close writes what is queued and stops the goroutine; later writes go
// straight through.
func (l *logWriter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	select {
	case l.pending <- struct{}{}:
	default:
	}
	<-l.done
	// A line queued between the last drain and closed being seen.
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		_, err := l.w.Write(l.buf)
		l.buf = nil
		return err
	}
	return nil
}
