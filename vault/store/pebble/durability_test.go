package pebble

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/fieldvault/fieldvault/vault/store"
)

// hookFS calls onSync before each Sync or SyncData of a file it opened.
type hookFS struct {
	vfs.FS
	onSync func(name string)
}

type hookFile struct {
	vfs.File
	name   string
	onSync func(name string)
}

func (f hookFile) Sync() error     { f.onSync(f.name); return f.File.Sync() }
func (f hookFile) SyncData() error { f.onSync(f.name); return f.File.SyncData() }

func (h hookFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return hookFile{File: f, name: name, onSync: h.onSync}, nil
}

func (h hookFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := h.FS.Create(name, c)
	return h.wrap(name, f, err)
}

func (h hookFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := h.FS.ReuseForWrite(old, name, c)
	return h.wrap(name, f, err)
}

func (h hookFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, o ...vfs.OpenOption) (vfs.File, error) {
	f, err := h.FS.OpenReadWrite(name, c, o...)
	return h.wrap(name, f, err)
}

// isWAL reports whether name is a WAL segment of the instance in dir.
func isWAL(dir, name string) bool {
	return filepath.Dir(name) == dir && strings.HasSuffix(name, ".log")
}

func testRow(token string, i int) store.Token {
	return store.Token{
		Token: token, Subject: fmt.Sprintf("sub-%d", i%7), Category: uint16(1 + i%3), KeyVersion: 1,
		CreatedAt: 1_764_000_000 + int64(i), ExpiresAt: 1_795_536_000,
		Fingerprint: []byte("fp-" + token), Ciphertext: []byte("ciphertext of " + token),
	}
}

func sameRow(a, b *store.Token) bool {
	return a.Token == b.Token && a.Subject == b.Subject && a.Category == b.Category &&
		a.KeyVersion == b.KeyVersion && a.CreatedAt == b.CreatedAt && a.ExpiresAt == b.ExpiresAt &&
		bytes.Equal(a.Fingerprint, b.Fingerprint) && bytes.Equal(a.Ciphertext, b.Ciphertext)
}

// checkConsistent walks every row and checks that the fingerprint and
// subject indexes and the counters agree with the rows.
func checkConsistent(t *testing.T, s *Store) map[string]store.Token {
	t.Helper()
	ctx := t.Context()
	rows := make(map[string]store.Token)
	counts := make(map[[2]uint32]int64)
	for cursor := ""; ; {
		page, next, err := s.ScanTokens(ctx, cursor, 500)
		if err != nil {
			t.Fatalf("ScanTokens: %v", err)
		}
		for _, r := range page {
			rows[r.Token] = r
			counts[[2]uint32{uint32(r.Category), r.KeyVersion}]++
		}
		if next == "" {
			break
		}
		cursor = next
	}
	tc, err := s.TokenCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[[2]uint32]int64)
	for _, c := range tc {
		got[[2]uint32{uint32(c.Category), c.Version}] = c.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(counts) {
		t.Errorf("TokenCounts %v, rows counted %v", got, counts)
	}
	bySubject := make(map[string][]string)
	for tok, r := range rows {
		bySubject[r.Subject] = append(bySubject[r.Subject], tok)
		if len(r.Fingerprint) > 0 {
			b, err := s.LookupFingerprints(ctx, r.Category, [][]byte{r.Fingerprint})
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != tok {
				t.Errorf("fingerprint of %q bound to %q", tok, b[0])
			}
		}
	}
	for sub, want := range bySubject {
		got, err := s.SubjectTokens(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("SubjectTokens(%q) has %d tokens, rows say %d", sub, len(got), len(want))
		}
	}
	return rows
}

// TestPowerLoss cuts power (keeps only what was fsynced, using Pebble's
// crashable in-memory file system) while writers run, and checks that
// every acknowledged write survives with its indexes and counters.
func TestPowerLoss(t *testing.T) {
	for _, unsynced := range []int{0, 50} {
		t.Run(fmt.Sprintf("unsynced%d%%", unsynced), func(t *testing.T) { testPowerLoss(t, unsynced) })
	}
}

func testPowerLoss(t *testing.T, unsyncedPercent int) {
	fs := vfs.NewCrashableMem()
	opt := Options{CacheSize: 8 << 20, MemTableSize: 1 << 20}
	s, err := open("db", opt, fs)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		acked   []store.Token
		revs    = make(map[string]uint64)
		stop    atomic.Bool
		wg      sync.WaitGroup
		counter atomic.Int64
	)
	for w := range 4 {
		wg.Go(func() {
			for seq := 0; !stop.Load(); seq++ {
				rows := make([]store.Token, 1+seq%40)
				for i := range rows {
					n := int(counter.Add(1))
					rows[i] = testRow(fmt.Sprintf("w%d-%d-%d", w, seq, i), n)
				}
				res, err := s.InsertTokens(context.Background(), rows)
				if err != nil {
					if !stop.Load() {
						t.Errorf("InsertTokens: %v", err)
					}
					return
				}
				id := fmt.Sprint("writer-", w)
				rev, err := s.PutRecord(context.Background(), store.Record{Kind: "progress", ID: id, Value: []byte(fmt.Sprint(seq))}, store.AnyRev)
				if err != nil {
					if !stop.Load() {
						t.Errorf("PutRecord: %v", err)
					}
					return
				}
				mu.Lock()
				for i, r := range res {
					if r.Err != nil {
						t.Errorf("row %q: %v", rows[i].Token, r.Err)
					}
				}
				acked = append(acked, rows...)
				revs[id] = rev
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	before := append([]store.Token(nil), acked...)
	beforeRevs := make(map[string]uint64, len(revs))
	for k, v := range revs {
		beforeRevs[k] = v
	}
	mu.Unlock()
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPercent, RNG: mrand.New(mrand.NewPCG(1, 2))})
	stop.Store(true)
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(before) < 100 {
		t.Fatalf("only %d rows acknowledged before the crash; the test proves little", len(before))
	}

	s, err = open("db", opt, crashed)
	if err != nil {
		t.Fatalf("open after power loss: %v", err)
	}
	defer s.Close()
	rows := checkConsistent(t, s)
	for i := range before {
		r, ok := rows[before[i].Token]
		if !ok {
			t.Fatalf("acknowledged row %q lost (%d rows acknowledged, %d recovered)", before[i].Token, len(before), len(rows))
		}
		if !sameRow(&r, &before[i]) {
			t.Fatalf("row %q recovered as %+v, want %+v", r.Token, r, before[i])
		}
	}
	for id, rev := range beforeRevs {
		rec, err := s.GetRecord(t.Context(), "progress", id)
		if err != nil || rec.Rev < rev {
			t.Errorf("record %s after power loss: %+v, %v; want rev >= %d", id, rec, err, rev)
		}
	}
	t.Logf("%d rows acknowledged before the crash, %d recovered", len(before), len(rows))
}

// TestReadWaitsForSync holds the main WAL's fsync and checks that data of
// the batch waiting for it is not returned by a read, nor reported as the
// existing binding of a fingerprint, before the fsync completes.
func TestReadWaitsForSync(t *testing.T) {
	var hold atomic.Bool
	gate := make(chan struct{})
	fs := hookFS{FS: vfs.NewMem(), onSync: func(name string) {
		if hold.Load() && isWAL("db", name) {
			<-gate
		}
	}}
	s, err := open("db", Options{CacheSize: 8 << 20}, fs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	hold.Store(true)
	release := sync.OnceFunc(func() { hold.Store(false); close(gate) })
	defer release() // before Close, which waits for the held writer
	row := testRow("tok", 1)
	inserted := make(chan error, 1)
	go func() {
		res, err := s.InsertTokens(context.Background(), []store.Token{row})
		if err == nil {
			err = res[0].Err
		}
		inserted <- err
	}()
	// Wait until the row is visible in Pebble (applied, not yet synced).
	key := appendTokenKey(nil, "tok")
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ok, _ := s.main.has(key); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("row never became visible")
		}
		time.Sleep(time.Millisecond)
	}

	type result struct {
		what string
		got  string
	}
	results := make(chan result, 3)
	go func() {
		got, err := s.LookupFingerprints(context.Background(), row.Category, [][]byte{row.Fingerprint})
		results <- result{"LookupFingerprints", fmt.Sprint(got, err)}
	}()
	go func() {
		got, err := s.GetTokens(context.Background(), []string{"tok"})
		results <- result{"GetTokens", fmt.Sprint(got != nil && got[0] != nil, err)}
	}()
	go func() {
		other := testRow("tok2", 2)
		other.Category, other.Fingerprint = row.Category, row.Fingerprint
		res, err := s.InsertTokens(context.Background(), []store.Token{other})
		results <- result{"InsertTokens", fmt.Sprint(res, err)}
	}()
	select {
	case r := <-results:
		t.Fatalf("%s returned %s before the row's fsync", r.what, r.got)
	case err := <-inserted:
		t.Fatalf("InsertTokens returned %v before its fsync", err)
	case <-time.After(200 * time.Millisecond):
	}
	release()
	if err := <-inserted; err != nil {
		t.Fatalf("InsertTokens: %v", err)
	}
	want := map[string]string{
		"LookupFingerprints": "[tok] <nil>",
		"GetTokens":          "true <nil>",
		"InsertTokens":       "[{store: fingerprint already bound tok}] <nil>",
	}
	for range 3 {
		r := <-results
		if r.got != want[r.what] {
			t.Errorf("%s = %s, want %s", r.what, r.got, want[r.what])
		}
	}
}

// TestGroupCommit checks that every acknowledged write is fsynced and that
// concurrent writers share fsyncs.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	var syncs atomic.Int64
	fs := hookFS{FS: vfs.Default, onSync: func(name string) {
		if isWAL(dir, name) {
			syncs.Add(1)
		}
	}}
	s, err := open(dir, Options{CacheSize: 8 << 20}, fs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()

	const serial = 50
	start := syncs.Load()
	for i := range serial {
		if _, err := s.InsertTokens(ctx, []store.Token{testRow(fmt.Sprint("serial-", i), i)}); err != nil {
			t.Fatal(err)
		}
	}
	serialSyncs := syncs.Load() - start

	const writers, each = 64, 20
	start = syncs.Load()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.InsertTokens(ctx, []store.Token{testRow(fmt.Sprintf("par-%d-%d", w, i), i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	parallelSyncs := syncs.Load() - start
	t.Logf("serial: %d commits, %d WAL fsyncs; %d writers: %d commits, %d WAL fsyncs",
		serial, serialSyncs, writers, writers*each, parallelSyncs)
	if serialSyncs < serial {
		t.Errorf("%d serial commits made only %d WAL fsyncs: some write was acknowledged unsynced", serial, serialSyncs)
	}
	if parallelSyncs > writers*each/4 {
		t.Errorf("%d concurrent commits made %d WAL fsyncs: no group commit", writers*each, parallelSyncs)
	}
}

// TestSubjectKeysScrubbed checks that after DeleteSubjectKeys the deleted
// material is in no file of the store, whether it had reached a table or
// was still only in the WAL, while other subjects' material stays.
func TestSubjectKeysScrubbed(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	secret := func() []byte {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return b
	}
	flushed, walOnly, bystander := secret(), secret(), secret()
	insert := func(subject string, k []byte) {
		t.Helper()
		if _, err := s.InsertSubjectKeys(ctx, []store.SubjectKeyRef{{Subject: subject, Category: 1, Version: 1}}, [][]byte{k}); err != nil {
			t.Fatal(err)
		}
	}
	insert("flushed", flushed)
	insert("bystander", bystander)
	if err := s.keys.db.Flush(); err != nil {
		t.Fatal(err)
	}
	insert("wal-only", walOnly)

	keysDir := filepath.Join(dir, SubjectKeysDir)
	for _, k := range [][]byte{flushed, walOnly, bystander} {
		if !dirContains(t, keysDir, k) {
			t.Fatalf("material %x not found on disk before deletion: the check below would prove nothing", k)
		}
		if dirContains(t, dir, k, keysDir) {
			t.Errorf("subject key material found outside %s", keysDir)
		}
	}
	for _, sub := range []string{"flushed", "wal-only"} {
		if n, err := s.DeleteSubjectKeys(ctx, sub, nil); err != nil || n != 1 {
			t.Fatalf("DeleteSubjectKeys(%s) = %d, %v", sub, n, err)
		}
	}
	// Pebble removes obsolete files in the background.
	for deadline := time.Now().Add(10 * time.Second); ; {
		left := dirContains(t, keysDir, flushed) || dirContains(t, keysDir, walOnly)
		if !left {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deleted subject key material still on disk 10s after DeleteSubjectKeys")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !dirContains(t, keysDir, bystander) {
		t.Error("another subject's key material was scrubbed too")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetSubjectKeys(ctx, []store.SubjectKeyRef{
		{Subject: "flushed", Category: 1, Version: 1},
		{Subject: "wal-only", Category: 1, Version: 1},
		{Subject: "bystander", Category: 1, Version: 1},
	})
	if err != nil || got[0] != nil || got[1] != nil || !bytes.Equal(got[2], bystander) {
		t.Errorf("after reopen GetSubjectKeys = %x, %v", got, err)
	}
}

// dirContains reports whether any file under dir, outside the skipped
// directories, contains b.
func dirContains(t *testing.T, dir string, b []byte, skip ...string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while walking
			}
			return err
		}
		if d.IsDir() {
			for _, s := range skip {
				if path == s {
					return filepath.SkipDir
				}
			}
			return nil
		}
		data, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestDirectoryMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range []string{dir, filepath.Join(dir, SubjectKeysDir)} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v, want 0700", d, fi.Mode().Perm())
		}
	}
}
