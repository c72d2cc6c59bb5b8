package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ServeFunc runs `fieldvault serve` with args until ctx ends (the
// command's own entry point, for in-process servers).
type ServeFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// ServerOptions says how to start a server for the bench.
type ServerOptions struct {
	// Binary is the fieldvault executable (default: this executable).
	Binary string
	// InProcess, when set, runs the server in this process instead of a
	// child (so that --cpuprofile sees it).
	InProcess ServeFunc
	// Store is passed as --store when not empty (e.g. redis://...).
	Store string
	// Args are extra serve flags.
	Args []string
	// DataDir, when set, is used and kept; otherwise a fresh temporary
	// directory is used and removed on Close.
	DataDir string
}

// Server is a fieldvault server the bench started.
type Server struct {
	Addr    string
	Token   string
	DataDir string
	LogPath string
	// CPU returns the server process's CPU time; nil for an in-process
	// server (this process's CPU time includes it).
	CPU   func() time.Duration
	close func() error
}

// Close stops the server and removes its temporary data directory.
func (s *Server) Close() error { return s.close() }

const listeningPrefix = "fieldvault listening on "

// inProcessStopWait bounds the wait for an in-process server to stop.
const inProcessStopWait = 5 * time.Minute

// StartServer starts `fieldvault serve --dev` on a free loopback port with a
// fresh data directory and a random admin key, and waits until it is ready.
func StartServer(ctx context.Context, o ServerOptions) (*Server, error) {
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	s := &Server{Token: "bench-" + hex.EncodeToString(tok[:])}
	dir, keep := o.DataDir, o.DataDir != ""
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "fieldvault-bench-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s.DataDir = dir
	removeDir := func() error {
		if keep {
			return nil
		}
		return os.RemoveAll(dir)
	}
	args := []string{"serve", "--dev", "--dev-root-token", s.Token, "--listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "data")}
	if o.Store != "" {
		args = append(args, "--store", o.Store)
	}
	args = append(args, o.Args...)
	s.LogPath = filepath.Join(dir, "server.log")
	logf, err := os.Create(s.LogPath)
	if err != nil {
		_ = removeDir()
		return nil, err
	}
	pr, pw := io.Pipe()
	exited := make(chan error, 1)
	var stop func() error
	if o.InProcess != nil {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		go func() {
			err := o.InProcess(sctx, args[1:], pw, logf)
			pw.CloseWithError(io.EOF)
			exited <- err
		}()
		stop = func() error {
			cancel()
			// A goroutine cannot be killed: wait (Pebble may be finishing a
			// compaction), and keep the data directory if it never stops.
			select {
			case err := <-exited:
				return err
			case <-time.After(inProcessStopWait):
				keep = true
				return fmt.Errorf("in-process server did not stop within %v; its data directory %s is kept", inProcessStopWait, dir)
			}
		}
	} else {
		bin := o.Binary
		if bin == "" {
			if bin, err = os.Executable(); err != nil {
				_ = removeDir()
				return nil, err
			}
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdout = pw
		cmd.Stderr = logf
		cmd.Env = serverEnv()
		if err := cmd.Start(); err != nil {
			_ = removeDir()
			return nil, err
		}
		pid := cmd.Process.Pid
		s.CPU = func() time.Duration {
			d, _ := ProcCPU(pid)
			return d
		}
		go func() {
			err := cmd.Wait()
			pw.CloseWithError(io.EOF)
			exited <- err
		}()
		stop = func() error {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				var ee *exec.ExitError
				if errors.As(err, &ee) && !ee.Exited() {
					return nil // ended by our signal
				}
				return err
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				return errors.New("server did not stop on SIGTERM; killed")
			}
		}
	}
	s.close = func() error {
		err := stop()
		_ = logf.Close()
		return errors.Join(err, removeDir())
	}

	// Wait for the listening line.
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		found := false
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), listeningPrefix); ok && !found {
				found = true
				addrc <- strings.TrimSpace(a)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	fail := func(err error) (*Server, error) {
		_ = s.close()
		return nil, err
	}
	select {
	case s.Addr = <-addrc:
	case err := <-exited:
		exited <- err // for close
		return fail(fmt.Errorf("server exited before listening (%v): %s", err, tail(s.LogPath, 5)))
	case <-time.After(60 * time.Second):
		return fail(fmt.Errorf("server did not start within 60s: %s", tail(s.LogPath, 5)))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if err := waitReady(ctx, s.Addr, 30*time.Second); err != nil {
		return fail(fmt.Errorf("%w: %s", err, tail(s.LogPath, 5)))
	}
	return s, nil
}

// serverEnv is the environment without FIELDVAULT_ settings, which would
// otherwise reach the child's configuration.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FIELDVAULT_") {
			env = append(env, kv)
		}
	}
	return env
}

func waitReady(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, addr+"/readyz", nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server at %s not ready", addr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of a file, joined by " | ".
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
