package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fieldvault/fieldvault/vault/store"
)

// AOFCheck says what Open and New do when Redis's persistence settings do
// not make acknowledged writes durable.
type AOFCheck int

const (
	// AOFWarn logs a warning (the default).
	AOFWarn AOFCheck = iota + 1
	// AOFRequire refuses to start unless every master runs with
	// appendonly yes and appendfsync always.
	AOFRequire
	// AOFSkip does not check: for managed Redis where CONFIG is disabled
	// and the policy is guaranteed otherwise.
	AOFSkip
)

// Options configures a Store. The zero value gives the defaults.
type Options struct {
	// Prefix starts every key. Default "fv:". Stores with different
	// prefixes share a Redis without seeing each other.
	Prefix string
	// BucketBits is log2 of the number of buckets each of the token,
	// fingerprint, subject-index and subject-key hashes is split into,
	// for a new store; a store that exists keeps the value it was created
	// with (it is part of the layout). Default 16 (65,536 buckets), suited
	// to up to about 10 million tokens; choose about log2(expected
	// tokens / 64). Range 1..24.
	BucketBits int
	// AOFCheck defaults to AOFWarn.
	AOFCheck AOFCheck
	// WaitReplicas, when positive, makes every write wait (WAIT) until this
	// many replicas acknowledged it, or fail with store.ErrUnavailable
	// after WaitTimeout; see the package documentation. It installs a
	// pipeline hook on the client (on each node client of a Cluster).
	WaitReplicas int
	// WaitTimeout bounds each WAIT. Default 1s.
	WaitTimeout time.Duration
	// KeysClient, when set, holds the subject key material (see
	// "Subject keys" in the package documentation). Default: the store's
	// client. Close does not close it.
	KeysClient goredis.UniversalClient
	// Logger receives warnings about the Redis configuration. Default
	// slog.Default().
	Logger *slog.Logger
}

// DefaultPrefix is the default Options.Prefix.
const DefaultPrefix = "fv:"

const (
	defaultPrefix      = DefaultPrefix
	defaultBucketBits  = 16
	maxBucketBits      = 24
	defaultWaitTimeout = time.Second
)

func (o *Options) setDefaults() error {
	if o.Prefix == "" {
		o.Prefix = defaultPrefix
	}
	if o.BucketBits == 0 {
		o.BucketBits = defaultBucketBits
	}
	if o.BucketBits < 1 || o.BucketBits > maxBucketBits {
		return fmt.Errorf("redis store: BucketBits %d out of 1..%d", o.BucketBits, maxBucketBits)
	}
	if o.AOFCheck == 0 {
		o.AOFCheck = AOFWarn
	}
	if o.AOFCheck < AOFWarn || o.AOFCheck > AOFSkip {
		return fmt.Errorf("redis store: unknown AOFCheck %d", o.AOFCheck)
	}
	if o.WaitReplicas < 0 {
		return fmt.Errorf("redis store: WaitReplicas %d", o.WaitReplicas)
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = defaultWaitTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// chunkBytes is a little under the 16 KiB Redis reads from a connection at
// a time (PROTO_IOBUF_LEN); see pipe.
const chunkBytes = 15 << 10

// Store is a store.Store on Redis. It is safe for concurrent use.
type Store struct {
	gate store.Gate // operations in flight finish before Close

	c     goredis.UniversalClient // rows, indexes, counters, records
	kc    goredis.UniversalClient // subject keys
	owned goredis.UniversalClient // closed by Close (Open's client)
	ks    keyspace
	log   *slog.Logger

	// chunkBytes is the size at which exec splits a pipeline over
	// several connections (see pipe).
	chunkBytes int
}

var _ store.Store = (*Store)(nil)

// New returns a store on client, which may be a standalone, Sentinel
// (failover) or Cluster client. It records the key layout in a new store,
// checks it in an existing one, and checks the persistence settings per
// opt.AOFCheck. Close does not close client.
func New(ctx context.Context, client goredis.UniversalClient, opt Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redis store: nil client")
	}
	if err := opt.setDefaults(); err != nil {
		return nil, err
	}
	s := &Store{c: client, kc: client, log: opt.Logger, chunkBytes: chunkBytes}
	if opt.KeysClient != nil {
		s.kc = opt.KeysClient
	}
	if _, ok := client.(*goredis.ClusterClient); ok {
		// Each chunk reaches every master; let each node see a full
		// read's worth.
		s.chunkBytes = 3 * chunkBytes
	}
	bits, err := initLayout(ctx, client, opt.Prefix, opt.BucketBits)
	if err != nil {
		return nil, err
	}
	s.ks = newKeyspace(opt.Prefix, bits)
	for _, c := range s.clients() {
		if err := checkConfig(ctx, c, opt.AOFCheck, opt.Logger); err != nil {
			return nil, err
		}
		if err := s.loadScripts(ctx, c); err != nil {
			return nil, err
		}
	}
	// Installed last, so that a store whose replicas are not there yet
	// opens, and reports not ready (Ping writes) until they are.
	if opt.WaitReplicas > 0 {
		h := &waitHook{n: int64(opt.WaitReplicas), timeout: opt.WaitTimeout}
		for _, c := range s.clients() {
			if err := installHook(ctx, c, h); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Open connects to the Redis named by url and returns a store on it; see
// ParseURL for the forms url takes. Parameters in url's query that name
// Options fields (prefix, bucket_bits, aof_check, wait_replicas,
// wait_timeout) override opt. Close closes the connection.
func Open(ctx context.Context, url string, opt Options) (*Store, error) {
	client, err := NewClient(url, &opt)
	if err != nil {
		return nil, err
	}
	s, err := New(ctx, client, opt)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	s.owned = client
	return s, nil
}

// Client returns the client holding rows, indexes and records, for
// sharing (the audit stream sink uses it).
func (s *Store) Client() goredis.UniversalClient { return s.c }

func (s *Store) clients() []goredis.UniversalClient {
	if s.kc == s.c {
		return []goredis.UniversalClient{s.c}
	}
	return []goredis.UniversalClient{s.c, s.kc}
}

// initLayout records the layout version and bucket bits in a new store and
// returns the bucket bits of the store.
func initLayout(ctx context.Context, c goredis.UniversalClient, prefix string, bits int) (uint, error) {
	meta := newKeyspace(prefix, 1).metaKey()
	p := newPipe(ctx, 4)
	p.hsetnx(meta, "layout", layoutVersion)
	p.hsetnx(meta, "bucket_bits", strconv.Itoa(bits))
	layout := p.hget(meta, "layout")
	got := p.hget(meta, "bucket_bits")
	tmp := &Store{chunkBytes: 1 << 30}
	if err := p.exec(tmp, c); err != nil {
		return 0, fmt.Errorf("redis store: reading the layout: %w", err)
	}
	for _, cmd := range []*goredis.StringCmd{layout, got} {
		if err := cmd.Err(); err != nil {
			return 0, fmt.Errorf("redis store: reading the layout: %w", replyErr(err))
		}
	}
	if layout.Val() != layoutVersion {
		return 0, fmt.Errorf("redis store: %s has key layout %q, this version reads %q: %w",
			meta, layout.Val(), layoutVersion, store.ErrCorrupt)
	}
	n, err := strconv.Atoi(got.Val())
	if err != nil || n < 1 || n > maxBucketBits {
		return 0, fmt.Errorf("redis store: %s has bucket_bits %q: %w", meta, got.Val(), store.ErrCorrupt)
	}
	return uint(n), nil
}

// Recommended hash encoding limits; see the package documentation.
const (
	minListpackEntries = 256
	minListpackValue   = 256
)

// checkConfig reads the persistence and encoding settings of every master
// of c and warns, or refuses per check.
func checkConfig(ctx context.Context, c goredis.UniversalClient, check AOFCheck, log *slog.Logger) error {
	if check == AOFSkip {
		return nil
	}
	one := func(ctx context.Context, n goredis.Cmdable, addr string) error {
		m, err := n.ConfigGet(ctx, "append*").Result()
		if err != nil {
			if check == AOFRequire {
				return fmt.Errorf("redis store: cannot read the persistence settings of %s (CONFIG GET): %w; "+
					"use aof_check=skip only if appendonly yes and appendfsync always are guaranteed otherwise", addr, err)
			}
			log.Warn("redis store: cannot read the persistence settings (CONFIG GET); "+
				"acknowledged tokens survive a Redis crash only with appendonly yes and appendfsync always",
				"redis", addr, "error", err.Error())
			return nil
		}
		if m["appendonly"] != "yes" || m["appendfsync"] != "always" {
			msg := fmt.Sprintf("redis store: Redis at %s runs with appendonly %q and appendfsync %q: ", addr, m["appendonly"], m["appendfsync"])
			switch {
			case m["appendonly"] != "yes":
				msg += "a Redis crash or restart loses every token written since the last snapshot"
			case m["appendfsync"] == "everysec":
				msg += "a Redis or machine crash loses up to about a second of acknowledged tokens"
			default:
				msg += "a machine crash loses acknowledged tokens the kernel had not yet written"
			}
			msg += "; run it with appendonly yes and appendfsync always"
			if check == AOFRequire {
				return errors.New(msg)
			}
			log.Warn(msg, "redis", addr)
		}
		h, err := n.ConfigGet(ctx, "hash-max-listpack-*").Result()
		if err == nil {
			entries, _ := strconv.Atoi(h["hash-max-listpack-entries"])
			value, _ := strconv.Atoi(h["hash-max-listpack-value"])
			if entries < minListpackEntries || value < minListpackValue {
				log.Warn("redis store: small hash-max-listpack limits make token buckets use the hashtable encoding, "+
					"about three times the memory; set hash-max-listpack-entries 1024 and hash-max-listpack-value 1024",
					"redis", addr, "hash-max-listpack-entries", entries, "hash-max-listpack-value", value)
			}
		}
		return nil
	}
	if cc, ok := c.(*goredis.ClusterClient); ok {
		var mu sync.Mutex
		return cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error {
			mu.Lock() // keep log lines whole and ordered per node
			defer mu.Unlock()
			return one(ctx, n, n.Options().Addr)
		})
	}
	addr := "redis"
	if cl, ok := c.(*goredis.Client); ok {
		addr = cl.Options().Addr
	}
	return one(ctx, c, addr)
}

// Close closes the store; operations in flight finish first, later ones
// and a second Close return store.ErrClosed. It closes the client only if
// Open created it.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		if s.owned != nil {
			if err := s.owned.Close(); err != nil {
				return unavailable(err)
			}
		}
		return nil
	})
}

// Ping checks that every master answers and that the store's Redis takes a
// write (a Redis out of memory, read-only or failing to write its AOF
// refuses it).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	for _, c := range s.clients() {
		// PING on the client's main pool (and on each master's, in a
		// Cluster); the write below goes through the pipeline pool, which
		// every other call uses. Each pool stops dialling for a second
		// after repeated failures, so both must answer.
		var err error
		if cc, ok := c.(*goredis.ClusterClient); ok {
			err = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error {
				return n.Ping(ctx).Err()
			})
		} else {
			err = c.Ping(ctx).Err()
		}
		if err != nil {
			return unavailable(err)
		}
		p := newPipe(ctx, 1)
		set := p.set(s.ks.pingKey(), strconv.FormatInt(time.Now().Unix(), 10))
		if err := p.exec(s, c); err != nil {
			return err
		}
		if err := set.Err(); err != nil {
			return unavailable(err)
		}
	}
	return nil
}

// enter starts an operation; leave ends it.
func (s *Store) enter(ctx context.Context) error { return s.gate.Enter(ctx) }

func (s *Store) leave() { s.gate.Leave() }

// Errors.

var errBadReply = fmt.Errorf("%w: unexpected reply from Redis", store.ErrCorrupt)

// unavailable wraps a failure to get an answer from Redis.
func unavailable(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("redis store: %w: %w", store.ErrUnavailable, err)
}

// replyErr wraps an error reply that should not have happened (a bug or a
// foreign key in the store's keyspace).
func replyErr(err error) error {
	if !isReplyError(err) {
		return unavailable(err)
	}
	return fmt.Errorf("redis store: %w", err)
}

func corrupt(what string, err error) error {
	return fmt.Errorf("redis store: %s: %w", what, err)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("redis store: %w: "+format, append([]any{store.ErrInvalid}, args...)...)
}

func asRedisError(err error, re *goredis.Error) bool { return errors.As(err, re) }

// waitHook appends WAIT to every pipeline that writes, on the pipeline's
// own connection, and fails the writes when too few replicas acknowledged
// them.
type waitHook struct {
	n       int64
	timeout time.Duration
	nodes   sync.Map // *goredis.Client -> true: node clients it was added to
}

func (h *waitHook) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (h *waitHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (h *waitHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if !writes(cmds) {
			return next(ctx, cmds)
		}
		w := goredis.NewIntCmd(ctx, "wait", h.n, h.timeout.Milliseconds())
		all := make([]goredis.Cmder, len(cmds)+1)
		copy(all, cmds)
		all[len(cmds)] = w
		err := next(ctx, all)
		if err == nil && w.Err() == nil && w.Val() < h.n {
			err = fmt.Errorf("NOREPLICAS %d of %d replicas acknowledged the write within %v", w.Val(), h.n, h.timeout)
			for _, c := range cmds {
				if c.Err() == nil || c.Err() == goredis.Nil {
					c.SetErr(err)
				}
			}
		}
		return err
	}
}

var writeCommands = map[string]bool{
	"hset": true, "hsetnx": true, "hdel": true, "hincrby": true, "evalsha": true, "eval": true,
	"zadd": true, "zrem": true, "del": true, "set": true,
}

func writes(cmds []goredis.Cmder) bool {
	for _, c := range cmds {
		if writeCommands[strings.ToLower(c.Name())] {
			return true
		}
	}
	return false
}

// installHook adds h to c, or in a Cluster to every node client, those
// that exist and those created later (after a topology change), once each.
func installHook(ctx context.Context, c goredis.UniversalClient, h *waitHook) error {
	cc, ok := c.(*goredis.ClusterClient)
	if !ok {
		c.AddHook(h)
		return nil
	}
	add := func(n *goredis.Client) {
		if _, dup := h.nodes.LoadOrStore(n, true); !dup {
			n.AddHook(h)
		}
	}
	cc.OnNewNode(add)
	err := cc.ForEachShard(ctx, func(ctx context.Context, n *goredis.Client) error {
		add(n)
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}
