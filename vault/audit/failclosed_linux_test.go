//go:build linux

package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// TestFailClosedFileWriteFails makes the file system refuse the log's
// writes for real: RLIMIT_FSIZE caps the file just above its size, so a
// group commit's write stops part-way with EFBIG (the Go runtime ignores
// SIGXFSZ). (A read-only directory would not do: the log is already open,
// and tests may run as root.) Every Append fails, the sink cuts the torn
// write back, and after the limit is lifted appends continue a chain that
// verifies.
func TestFailClosedFileWriteFails(t *testing.T) {
	dir := t.TempDir()
	sink := openFileSink(t, dir)
	l := newLog(t, testConfig("node-a", sink))
	appendN(t, l, 3)
	_, head := l.Head()
	path := filepath.Join(dir, LogFileName)
	size := fileSize(t, path)

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	capped := syscall.Rlimit{Cur: uint64(size) + 200, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &capped); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()

	const n = 20
	recs := make([]*Record, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		recs[i] = sampleRecord(l.refs, 10+i)
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = l.Append(context.Background(), recs[i]) }()
	}
	wg.Wait()
	restore()
	for i := range n {
		if !errors.Is(errs[i], ErrUnavailable) || !errors.Is(errs[i], syscall.EFBIG) {
			t.Fatalf("Append %d with the file capped: %v, want ErrUnavailable wrapping EFBIG", i, errs[i])
		}
		if recs[i].Seq != 0 {
			t.Fatalf("failed Append %d reported seq %d", i, recs[i].Seq)
		}
	}
	if got := fileSize(t, path); got != size {
		t.Fatalf("log is %d bytes after the failed writes, want %d (torn write cut back)", got, size)
	}
	if seq, h := l.Head(); seq != 3 || h != head {
		t.Fatalf("head moved to %d during the failure", seq)
	}

	after := appendN(t, l, 3)
	if after[0].Seq != 4 || after[0].PrevHash != head {
		t.Fatalf("after recovery: seq %d", after[0].Seq)
	}
	if rep := verifyClean(t, sink); rep.Records != 6 {
		t.Fatalf("%d records, want 6", rep.Records)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
