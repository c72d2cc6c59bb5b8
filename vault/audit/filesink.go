package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// File names inside FileConfig.Dir.
const (
	LogFileName        = "audit.jsonl"
	CheckpointFileName = "checkpoint.json"
)

var errLogInUse = errors.New("audit/file: the log is open for writing by another process")

// FileConfig configures a FileSink.
type FileConfig struct {
	// Dir holds the log, LogFileName: JSON lines, mode 0600. Created with
	// mode 0700 if missing.
	Dir string
	// CheckpointPath is the checkpoint store, a file replaced atomically
	// (write, sync, rename, sync the directory). Default
	// Dir/CheckpointFileName. Keep it apart from the log where you can: on
	// another volume, or backed up and shipped separately, so that whoever
	// can truncate the log cannot also roll the checkpoint back.
	CheckpointPath string
	// ReadOnly opens a log that another process writes, for Verify and
	// queries: no lock, no repair, and Append fails.
	ReadOnly bool
}

// FileSink stores a chain as JSON lines in one file, appended with
// O_APPEND and synced once per group commit. A writer holds an exclusive
// flock on the file.
//
// On open a writer repairs a torn tail: bytes after the last newline are an
// entry whose write never completed (a crash mid-write), so never
// acknowledged; they are cut off and counted in TornBytes. A complete last
// line is never cut, whatever it holds: if it does not verify, New refuses
// to start. After a failed write the sink truncates the file back to its
// last synced size; if it cannot, it reopens (and repairs) on the next
// Append.
type FileSink struct {
	path     string
	cpPath   string
	readOnly bool

	mu     sync.Mutex
	f      *os.File // nil: reopen before the next write
	size   int64    // bytes of whole, synced entries
	torn   int64
	closed bool
}

var _ Sink = (*FileSink)(nil)

// OpenFileSink opens (creating if needed) the log in cfg.Dir.
func OpenFileSink(cfg FileConfig) (*FileSink, error) {
	if cfg.Dir == "" {
		return nil, errors.New("audit/file: Dir is required")
	}
	s := &FileSink{
		path:     filepath.Join(cfg.Dir, LogFileName),
		cpPath:   cfg.CheckpointPath,
		readOnly: cfg.ReadOnly,
	}
	if s.cpPath == "" {
		s.cpPath = filepath.Join(cfg.Dir, CheckpointFileName)
	}
	if s.readOnly {
		if _, err := os.Stat(s.path); err != nil {
			return nil, fmt.Errorf("audit/file: %w", err)
		}
		return s, nil
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit/file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.cpPath), 0o700); err != nil {
		return nil, fmt.Errorf("audit/file: %w", err)
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// open opens the log for appending, locks it and repairs a torn tail.
func (s *FileSink) open() error {
	_, statErr := os.Stat(s.path)
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit/file: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		return fmt.Errorf("audit/file: %s: %w", s.path, err)
	}
	if err := lockFile(f); err != nil {
		return fail(err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return fail(err)
		}
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		if err := syncDir(filepath.Dir(s.path)); err != nil {
			return fail(err)
		}
	}
	size := fi.Size()
	end, err := lastNewline(f, size)
	if err != nil {
		return fail(err)
	}
	if end < size {
		if err := f.Truncate(end); err != nil {
			return fail(err)
		}
		if err := f.Sync(); err != nil {
			return fail(err)
		}
		s.torn += size - end
	}
	s.f, s.size = f, end
	return nil
}

// lastNewline returns the offset just after the last '\n' in the first size
// bytes of f (0 if there is none).
func lastNewline(f *os.File, size int64) (int64, error) {
	var buf [4096]byte
	for end := size; end > 0; {
		n := min(int64(len(buf)), end)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// TornBytes returns how many bytes of an incomplete final line were cut off
// when the log was opened (or, read-only, ignored by the last scan).
func (s *FileSink) TornBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.torn
}

// Append writes b with one write and one fsync.
func (s *FileSink) Append(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readOnly || s.closed {
		return errors.New("audit/file: read-only or closed")
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	n, err := s.f.Write(b.Bytes())
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		s.rollback()
		return fmt.Errorf("audit/file: %w", err)
	}
	s.size += int64(n)
	return nil
}

// rollback cuts the file back to its last synced size after a failed write,
// or drops the descriptor so that the next Append reopens and repairs.
func (s *FileSink) rollback() {
	err := s.f.Truncate(s.size)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		s.f.Close()
		s.f = nil
	}
}

// extent returns the bytes a scan may read: the synced entries for a
// writer; for a reader, the file up to its last newline.
func (s *FileSink) extent(f *os.File) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.readOnly {
		return s.size, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end, err := lastNewline(f, fi.Size())
	if err != nil {
		return 0, err
	}
	s.torn = fi.Size() - end
	return end, nil
}

// Scan reads the log from the start.
func (s *FileSink) Scan(ctx context.Context, fn func(entry []byte) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("audit/file: %w", err)
	}
	defer f.Close()
	size, err := s.extent(f)
	if err != nil {
		return fmt.Errorf("audit/file: %w", err)
	}
	return scanLines(ctx, io.NewSectionReader(f, 0, size), fn)
}

// scanLines calls fn for each '\n'-terminated line of r. A line longer than
// maxEntry is passed cut to maxEntry bytes (it cannot decode). Bytes after
// the last newline are ignored.
func scanLines(ctx context.Context, r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if long != nil {
				if len(long) < maxEntry {
					long = append(long, line[:min(len(line)-1, maxEntry-len(long))]...)
				}
				line, long = long, nil
			} else {
				line = line[:len(line)-1]
			}
			if err := fn(line); err != nil {
				return err
			}
		case errors.Is(err, bufio.ErrBufferFull):
			if long == nil {
				long = make([]byte, 0, 2*len(line))
			}
			if len(long) < maxEntry {
				long = append(long, line[:min(len(line), maxEntry-len(long))]...)
			}
		case errors.Is(err, io.EOF):
			return nil
		default:
			return fmt.Errorf("audit/file: %w", err)
		}
	}
}

// ScanBack reads the log from the last entry.
func (s *FileSink) ScanBack(ctx context.Context, fn func(entry []byte) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("audit/file: %w", err)
	}
	defer f.Close()
	size, err := s.extent(f)
	if err != nil {
		return fmt.Errorf("audit/file: %w", err)
	}
	if size == 0 {
		return nil
	}
	const chunk = 64 << 10
	var (
		pos      = size - 1 // drop the final newline
		pending  []byte     // the end of a line whose start is not read yet
		overlong bool
		buf      = make([]byte, chunk)
	)
	for pos > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(int64(chunk), pos)
		if _, err := f.ReadAt(buf[:n], pos-n); err != nil {
			return fmt.Errorf("audit/file: %w", err)
		}
		pos -= n
		data := append(buf[:n:n], pending...)
		for {
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 {
				break
			}
			line := data[i+1:]
			if overlong {
				line, overlong = line[:min(len(line), maxEntry)], false
			}
			if err := fn(line); err != nil {
				return err
			}
			data = data[:i]
		}
		if len(data) > maxEntry {
			data, overlong = data[:maxEntry], true
		}
		pending = append(pending[:0], data...)
	}
	return fn(pending)
}

// Checkpoint reads the checkpoint store.
func (s *FileSink) Checkpoint(ctx context.Context) ([]byte, error) {
	b, err := os.ReadFile(s.cpPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit/file: %w", err)
	}
	return bytes.TrimSuffix(b, []byte("\n")), nil
}

// PutCheckpoint replaces the checkpoint store atomically and durably.
func (s *FileSink) PutCheckpoint(ctx context.Context, cp []byte) error {
	s.mu.Lock()
	unusable := s.readOnly || s.closed
	s.mu.Unlock()
	if unusable {
		return errors.New("audit/file: read-only or closed")
	}
	dir := filepath.Dir(s.cpPath)
	tmp, err := os.CreateTemp(dir, ".checkpoint-*")
	if err != nil {
		return fmt.Errorf("audit/file: %w", err)
	}
	_, err = tmp.Write(append(cp[:len(cp):len(cp)], '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.cpPath)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("audit/file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("audit/file: %w", err)
	}
	return nil
}

// Close releases the file and its lock.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
