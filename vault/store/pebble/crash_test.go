package pebble

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/store"
)

// crashChildEnv switches the test binary into the writer child of
// TestCrashKill; its value is the data directory.
const crashChildEnv = "FIELDVAULT_PEBBLE_CRASH_CHILD_DIR"

// TestCrashKill runs a writer in a child process (this test binary,
// re-executed), kills it with SIGKILL in the middle of its writes, and
// checks that everything it acknowledged is in the reopened store, intact,
// with consistent indexes and counters.
//
// The child prints "ack TOKEN" after InsertTokens returned it stored,
// "try-del TOKEN" before deleting it and "del TOKEN" after. A kill loses
// the process but not the OS page cache, so this checks recovery of what
// Pebble wrote; TestPowerLoss checks that acknowledged writes were also
// fsynced.
func TestCrashKill(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	acked := make(map[string]bool)
	trying := make(map[string]bool) // delete started, maybe not done
	deleted := make(map[string]bool)
	kill := time.AfterFunc(1500*time.Millisecond, func() { _ = cmd.Process.Kill() })
	defer kill.Stop()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		op, tok, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			t.Fatalf("child printed %q", sc.Text())
		}
		switch op {
		case "ack":
			acked[tok] = true
		case "try-del":
			trying[tok] = true
		case "del":
			deleted[tok] = true
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
		t.Fatalf("child did not die by the signal: %v\n%s", err, stderr.String())
	}
	if len(acked) < 200 || len(deleted) == 0 {
		t.Fatalf("child acknowledged %d rows and %d deletes before the kill; too few to prove anything\n%s",
			len(acked), len(deleted), stderr.String())
	}

	s, err := Open(dir, Options{CacheSize: 8 << 20})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	rows := checkConsistent(t, s)
	present, gone := 0, 0
	for tok := range acked {
		r, ok := rows[tok]
		switch {
		case deleted[tok]:
			if ok {
				t.Errorf("row %q deleted and acknowledged, but present after the crash", tok)
			}
			gone++
		case trying[tok]:
			// The delete was in flight: either outcome is correct.
		case !ok:
			t.Errorf("acknowledged row %q lost", tok)
		default:
			want := crashRow(tok)
			if !sameRow(&r, &want) {
				t.Errorf("row %q recovered as %+v, want %+v", tok, r, want)
			}
			present++
		}
	}
	t.Logf("child acknowledged %d rows and %d deletes; %d rows checked present, %d checked gone", len(acked), len(deleted), present, gone)
}

// crashRow is the row the child writes for token, so the parent can check
// its content.
func crashRow(token string) store.Token {
	var n int
	for _, c := range token {
		n = n*31 + int(c)
	}
	if n < 0 {
		n = -n
	}
	r := testRow(token, n)
	r.Ciphertext = bytes.Repeat([]byte(token), 3)
	return r
}

func crashChild(dir string) {
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	emit := func(lines []string) {
		out.Lock()
		defer out.Unlock()
		// One write per call, so a kill cannot split a line.
		if _, err := os.Stdout.WriteString(strings.Join(lines, "")); err != nil {
			os.Exit(3)
		}
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			ctx := context.Background()
			var prev []store.Token
			for seq := 0; ; seq++ {
				rows := make([]store.Token, 1+(seq*7)%100)
				for i := range rows {
					rows[i] = crashRow(fmt.Sprintf("w%d-%d-%d", w, seq, i))
				}
				res, err := s.InsertTokens(ctx, rows)
				if err != nil {
					fmt.Fprintln(os.Stderr, "InsertTokens:", err)
					os.Exit(2)
				}
				lines := make([]string, 0, len(rows))
				for i, r := range res {
					if r.Err != nil {
						fmt.Fprintln(os.Stderr, "row:", r.Err)
						os.Exit(2)
					}
					lines = append(lines, "ack "+rows[i].Token+"\n")
				}
				emit(lines)
				if seq%3 == 2 && len(prev) > 0 {
					del := make([]string, 0, len(prev))
					lines = lines[:0]
					for i := 0; i < len(prev); i += 2 {
						del = append(del, prev[i].Token)
						lines = append(lines, "try-del "+prev[i].Token+"\n")
					}
					emit(lines)
					if _, err := s.DeleteTokens(ctx, del); err != nil {
						fmt.Fprintln(os.Stderr, "DeleteTokens:", err)
						os.Exit(2)
					}
					for i := range lines {
						lines[i] = "del " + del[i] + "\n"
					}
					emit(lines)
				}
				prev = rows
			}
		})
	}
	wg.Wait()
}
