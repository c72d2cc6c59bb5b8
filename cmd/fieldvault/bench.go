package main

import (
	"context"
	"errors"
	"io"
)

// cmdBench runs the load harness (package bench).
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("bench: not implemented yet")
}
