package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"
	"unicode/utf8"
)

// Errors. Any error from Append means the record was not committed; the
// vault denies with AUDIT_UNAVAILABLE whatever the error.
var (
	// ErrClosed: Append after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrTampered: the stored chain does not verify where the Log must
	// continue it (New, or the re-read after a sink failure). The Log does
	// not write after it; run Verify for the full picture.
	ErrTampered = errors.New("audit: stored chain does not verify")
	// ErrInvalidRecord: a record the Log cannot encode (nil, a time outside
	// years 0000-9999, a Details key that is not UTF-8, or an encoding over
	// MaxEntryBytes). A programming error.
	ErrInvalidRecord = errors.New("audit: invalid record")
)

// Defaults for Config.
const (
	DefaultCheckpointEvery    = 10000
	DefaultCheckpointInterval = time.Second
	DefaultSinkTimeout        = 5 * time.Second
	DefaultMaxBatch           = 8192
)

// Config configures a Log. Node, RefKey, SigningKey and Sink are required.
type Config struct {
	// Node names the chain: the vault replica that writes it. Every replica
	// keeps its own chain, so Node must be unique among replicas and stable
	// across restarts (a StatefulSet pod name, a host name). 1 to 64
	// characters from [A-Za-z0-9._-], starting with a letter or digit.
	Node string
	// RefKey is the HMAC key of [Log.Ref], RefKeySize bytes, one per
	// deployment (tenant), never per subject: Refs must outlive erasure.
	RefKey []byte
	// SigningKey signs checkpoints. Verifiers need only its public half
	// ([Log.PublicKey]). Whoever holds it can rewrite the log undetectably:
	// keep it where the log's writers and readers cannot read it.
	SigningKey ed25519.PrivateKey
	// Sink stores the chain. The Log does not close it: close it after
	// Log.Close.
	Sink Sink
	// Clock gives record and checkpoint times. Default time.Now.
	Clock func() time.Time
	// CheckpointEvery and CheckpointInterval pace the checkpoint store.
	// Every group commit writes a signed checkpoint into the log, in the
	// same write; the store gets the latest one after CheckpointEvery
	// records or CheckpointInterval, whichever comes first, and on Close.
	// The log's tail after the store's checkpoint can be cut off unnoticed,
	// so these bound that window. Defaults DefaultCheckpointEvery and
	// DefaultCheckpointInterval.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// SinkTimeout bounds each sink operation of a group commit. Default
	// DefaultSinkTimeout.
	SinkTimeout time.Duration
	// MaxBatch is the most records in one group commit. Default
	// DefaultMaxBatch.
	MaxBatch int
	// Logger receives warnings: checkpoint store failures, resyncs. Never a
	// record, a key or an identifier. Default: discard.
	Logger *slog.Logger
	// AllowMissingCheckpoint lets New continue a non-empty log whose
	// checkpoint store is empty (for example after losing the store). It is
	// an operator decision: run Verify first, since without a checkpoint a
	// truncated log cannot be told from a whole one.
	AllowMissingCheckpoint bool
}

// Format prints the configuration without key material.
func (c Config) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "audit.Config{Node:%q RefKey:REDACTED SigningKey:REDACTED CheckpointEvery:%d CheckpointInterval:%s}",
		c.Node, c.CheckpointEvery, c.CheckpointInterval)
}

// LogValue logs the configuration without key material.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("node", c.Node),
		slog.Int("checkpoint_every", c.CheckpointEvery),
		slog.Duration("checkpoint_interval", c.CheckpointInterval))
}

var nodeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ict is Indochina Time, UTC+7 without daylight saving, for ts_ict.
var ict = time.FixedZone("ICT", 7*3600)

// Log is one node's hash-chained audit log. It implements [Appender].
type Log struct {
	node       string
	refs       *Refs
	key        ed25519.PrivateKey
	pub        ed25519.PublicKey
	sink       Sink
	clock      func() time.Time
	cpEvery    uint64
	cpInterval time.Duration
	timeout    time.Duration
	maxBatch   int
	logger     *slog.Logger

	mu       sync.Mutex
	queue    []*waiter
	closed   bool
	headSeq  uint64 // copy of head for Head, under mu
	headHash string

	kick      chan struct{}
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// Owned by the committer goroutine (and by New before it starts).
	head       chainHead
	cpLine     []byte // the latest checkpoint line in the log
	cpSeq      uint64 // the seq it covers
	storeSeq   uint64 // the seq the checkpoint store's checkpoint covers
	storeTime  time.Time
	needResync bool
	batch      Batch
	spare      []*waiter
	sigBuf     []byte
}

type chainHead struct {
	seq  uint64
	hash string
}

type waiter struct {
	rec  *Record
	err  error
	done chan struct{}
}

var waiters = sync.Pool{New: func() any { return &waiter{done: make(chan struct{}, 1)} }}

// New starts a Log on cfg.Sink. It resumes the chain from the sink's tail:
// it reads back from the last record to the latest checkpoint in the
// checkpoint store, checking each record's hash and link, and refuses to
// start (ErrTampered) if they do not verify or if the log ends before the
// checkpoint. On an empty sink and store it writes a genesis checkpoint.
func New(cfg Config) (*Log, error) {
	if !nodeRE.MatchString(cfg.Node) {
		return nil, errors.New("audit: Node must be 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit")
	}
	if len(cfg.SigningKey) != ed25519.PrivateKeySize {
		return nil, errors.New("audit: SigningKey must be an Ed25519 private key")
	}
	if cfg.Sink == nil {
		return nil, errors.New("audit: Sink is required")
	}
	refs, err := NewRefs(cfg.RefKey)
	if err != nil {
		return nil, err
	}
	key := slices.Clone(cfg.SigningKey)
	l := &Log{
		node:       cfg.Node,
		refs:       refs,
		key:        key,
		pub:        key.Public().(ed25519.PublicKey),
		sink:       cfg.Sink,
		clock:      cfg.Clock,
		cpEvery:    uint64(cfg.CheckpointEvery),
		cpInterval: cfg.CheckpointInterval,
		timeout:    cfg.SinkTimeout,
		maxBatch:   cfg.MaxBatch,
		logger:     cfg.Logger,
		kick:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	if l.clock == nil {
		l.clock = time.Now
	}
	if l.cpEvery == 0 {
		l.cpEvery = DefaultCheckpointEvery
	}
	if l.cpInterval <= 0 {
		l.cpInterval = DefaultCheckpointInterval
	}
	if l.timeout <= 0 {
		l.timeout = DefaultSinkTimeout
	}
	if l.maxBatch <= 0 {
		l.maxBatch = DefaultMaxBatch
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if err := l.start(context.Background(), cfg.AllowMissingCheckpoint); err != nil {
		return nil, err
	}
	l.headSeq, l.headHash = l.head.seq, l.head.hash
	go l.run()
	return l, nil
}

// Ref returns the Ref of an identifier; see [Refs.Ref].
func (l *Log) Ref(id string) Ref { return l.refs.Ref(id) }

// PublicKey returns the key that verifies this Log's checkpoints.
func (l *Log) PublicKey() ed25519.PublicKey { return slices.Clone(l.pub) }

// Node returns the chain's node name.
func (l *Log) Node() string { return l.node }

// Head returns the sequence number and hash of the last committed record
// (0 and "" for an empty chain).
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.headSeq, l.headHash
}

// Append commits rec. It sets rec.Seq, Node, PrevHash and Hash, and Time (to
// the clock) if it is zero and TimeICT if it is empty, and returns nil only
// after the sink made rec durable. Concurrent Appends are group committed:
// everything waiting goes to the sink in one write and one sync. If the sink
// fails, every Append of that group returns an error wrapping ErrUnavailable
// and its chain fields are cleared; the chain head does not move. rec must
// not be modified until Append returns.
//
// ctx cancels an Append that has not yet been taken into a group commit;
// once taken, Append waits for the outcome, which SinkTimeout bounds.
func (l *Log) Append(ctx context.Context, rec *Record) error {
	if rec == nil {
		return fmt.Errorf("%w: nil record", ErrInvalidRecord)
	}
	if !validTime(rec.Time) || (rec.Evidence != nil && !validTime(rec.Evidence.Expires)) {
		return fmt.Errorf("%w: time outside years 0000-9999", ErrInvalidRecord)
	}
	for k := range rec.Details {
		// Invalid UTF-8 is written as U+FFFD, which could make two keys one.
		if !utf8.ValidString(k) {
			return fmt.Errorf("%w: a Details key is not valid UTF-8", ErrInvalidRecord)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w := waiters.Get().(*waiter)
	w.rec, w.err = rec, nil
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		w.rec = nil
		waiters.Put(w)
		return ErrClosed
	}
	l.queue = append(l.queue, w)
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		l.mu.Lock()
		if i := slices.Index(l.queue, w); i >= 0 {
			l.queue = slices.Delete(l.queue, i, i+1)
			l.mu.Unlock()
			w.rec = nil
			waiters.Put(w)
			return ctx.Err()
		}
		l.mu.Unlock()
		<-w.done
	}
	err := w.err
	w.rec, w.err = nil, nil
	waiters.Put(w)
	return err
}

// Close commits what is queued, puts the latest checkpoint into the
// checkpoint store if it is behind, and stops the Log. Appends after Close return
// ErrClosed. It returns the error of the final checkpoint, if any.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.quit)
		<-l.done
	})
	return l.closeErr
}

func (l *Log) run() {
	defer close(l.done)
	t := time.NewTicker(l.cpInterval)
	defer t.Stop()
	for {
		select {
		case <-l.kick:
			l.drain()
		case <-t.C:
			l.drain()
			if l.storeSeq < l.cpSeq {
				_ = l.putCheckpoint() // logged; retried on the next tick
			}
		case <-l.quit:
			l.drain()
			if l.storeSeq < l.cpSeq {
				if err := l.putCheckpoint(); err != nil {
					l.closeErr = fmt.Errorf("audit: final checkpoint: %w", err)
				}
			}
			return
		}
	}
}

// drain commits queued appends until the queue is empty.
func (l *Log) drain() {
	for {
		l.mu.Lock()
		ws := l.queue
		l.queue = l.spare
		l.mu.Unlock()
		if len(ws) == 0 {
			l.spare = ws
			return
		}
		for rest := ws; len(rest) > 0; {
			n := min(len(rest), l.maxBatch)
			l.commit(rest[:n], false)
			rest = rest[n:]
		}
		clear(ws)
		l.spare = ws[:0]
	}
}

// commit writes one group: the records of ws and a checkpoint line
// covering the last of them, signed, in one sink write. It puts the
// checkpoint into the checkpoint store too when CheckpointEvery records or
// CheckpointInterval have passed since the store's, or when force is set
// (force also writes a checkpoint for an empty group). It wakes every waiter
// and returns the first error.
func (l *Log) commit(ws []*waiter, force bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if l.needResync {
		if err := l.resync(ctx); err != nil {
			l.wake(ws, err)
			return err
		}
	}
	b := &l.batch
	b.reset()
	seq, prev := l.head.seq, l.head.hash
	now := l.clock()
	var hx [64]byte
	for _, w := range ws {
		r := w.rec
		if r.Time.IsZero() {
			r.Time = now
		}
		if r.TimeICT == "" {
			r.TimeICT = r.Time.In(ict).Format(time.RFC3339Nano)
		}
		r.Seq, r.Node, r.PrevHash, r.Hash = seq+1, l.node, prev, ""
		mark := len(b.buf)
		var hs int
		b.buf, hs, _ = appendRecord(b.buf, r)
		if len(b.buf)-mark+len(hx) > maxEntry {
			b.truncate(mark)
			clearChain(r)
			w.err = fmt.Errorf("%w: encoding exceeds %d bytes", ErrInvalidRecord, maxEntry)
			continue
		}
		sum := sha256.Sum256(b.buf[mark:])
		hex.Encode(hx[:], sum[:])
		b.buf = slices.Insert(b.buf, hs, hx[:]...)
		r.Hash = string(hx[:])
		b.add(r.Seq, false)
		seq, prev = r.Seq, r.Hash
	}
	if seq == l.head.seq && !force {
		l.wake(ws, nil) // nothing to write: every record was invalid
		return nil
	}
	cpStart := len(b.buf)
	b.buf, l.sigBuf = appendCheckpoint(b.buf, &Checkpoint{Node: l.node, Seq: seq, Hash: prev, Time: now}, l.key, l.sigBuf)
	b.add(seq, true)
	if err := l.sink.Append(ctx, b); err != nil {
		l.needResync = true
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		for _, w := range ws {
			if w.err == nil {
				clearChain(w.rec)
			}
		}
		l.wake(ws, err)
		return err
	}
	l.head = chainHead{seq, prev}
	l.mu.Lock()
	l.headSeq, l.headHash = seq, prev
	l.mu.Unlock()
	l.wake(ws, nil)
	l.cpLine = append(l.cpLine[:0], b.buf[cpStart:len(b.buf)-1]...)
	l.cpSeq = seq
	if force || seq-l.storeSeq >= l.cpEvery || now.Sub(l.storeTime) >= l.cpInterval {
		return l.putCheckpoint()
	}
	return nil
}

// putCheckpoint puts the latest checkpoint line into the checkpoint store.
// A failure does not fail the records it covers, which are durable and
// signed in the log; it is logged and retried on the next tick.
func (l *Log) putCheckpoint() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := l.sink.PutCheckpoint(ctx, l.cpLine); err != nil {
		l.logger.Warn("audit: checkpoint store write failed; will retry", "node", l.node, "seq", l.cpSeq, "err", err)
		return err
	}
	l.storeSeq, l.storeTime = l.cpSeq, l.clock()
	return nil
}

// wake reports err (unless the waiter already has its own) to every waiter.
func (l *Log) wake(ws []*waiter, err error) {
	for _, w := range ws {
		if w.err == nil {
			w.err = err
		}
		w.done <- struct{}{}
	}
}

func clearChain(r *Record) { r.Seq, r.Node, r.PrevHash, r.Hash = 0, "", "", "" }
