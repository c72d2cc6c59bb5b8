package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures a RedisStreamSink.
type RedisConfig struct {
	// Client is any go-redis client: standalone, Sentinel or Cluster.
	Client redis.UniversalClient
	// Node is the Log's node: the sink writes StreamKey(Node).
	Node string
	// CheckpointClient holds the checkpoint store, CheckpointKey(Node).
	// Default Client. A separate Redis (another team's, or one whose
	// credentials the vault's operators lack) keeps checkpoints further
	// apart from the log.
	CheckpointClient redis.UniversalClient
	// SkipDurabilityCheck skips the start-up check that every master runs
	// with appendonly yes and appendfsync always. Set it only where CONFIG
	// is disabled (managed Redis) and that policy is guaranteed otherwise:
	// with a weaker policy an acknowledged record can be lost.
	SkipDurabilityCheck bool
	// Prefix starts every key of the sink; default [DefaultRedisPrefix].
	// Deployments sharing one Redis use different prefixes.
	Prefix string
}

// DefaultRedisPrefix is the default [RedisConfig.Prefix], the Redis token
// store's default prefix too: a deployment's store and audit keys share one
// prefix.
const DefaultRedisPrefix = "fv:"

// StreamKey is the stream holding node's chain, under prefix (""
// for [DefaultRedisPrefix]). The hash tag keeps each node's stream whole on
// one Cluster slot.
func StreamKey(prefix, node string) string {
	return cmp.Or(prefix, DefaultRedisPrefix) + "audit:{" + node + "}"
}

// CheckpointKey is the string holding node's latest checkpoint. It has no
// hash tag, so in a Cluster it usually lives on another master than the
// stream.
func CheckpointKey(prefix, node string) string {
	return cmp.Or(prefix, DefaultRedisPrefix) + "audit-checkpoint:" + node
}

// NodesKey is the set of the nodes that write a chain under prefix (see
// [RedisStreamSink.Register]), so that readers of every chain (the
// data-subject access report, audit verify --all-nodes) find them all.
func NodesKey(prefix string) string { return cmp.Or(prefix, DefaultRedisPrefix) + "audit:nodes" }

// RedisNodes returns the nodes registered in NodesKey(prefix), sorted.
func RedisNodes(ctx context.Context, c redis.UniversalClient, prefix string) ([]string, error) {
	key := NodesKey(prefix)
	nodes, err := c.SMembers(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("audit/redis: SMEMBERS %s: %w", key, err)
	}
	slices.Sort(nodes)
	return nodes, nil
}

// RedisStreamSink stores a chain in a Redis stream, one entry per record or
// checkpoint, with the line in field "e". A record's entry ID is "<seq>-0",
// so the stream refuses a second writer of the same seq (two replicas
// configured with one Node name fail closed instead of forking the chain);
// a checkpoint's is "<seq>-<n>", after the record it covers.
//
// Durability: a group commit is one EVALSHA running one XADD per entry,
// atomic in Redis; with appendonly yes and appendfsync always Redis writes
// and fsyncs the AOF before it replies. Replication to replicas is
// asynchronous, so a failover can lose the latest records; the new master's
// stream then ends before the Log's head and the Log stops (ErrTampered)
// rather than fork the chain.
type RedisStreamSink struct {
	c, cpc   redis.UniversalClient
	node     string
	stream   string
	cpKey    string
	nodesKey string
}

// Register adds the sink's node to [NodesKey]. A writer registers before
// its first record; a sink opened only to read or verify a chain does not.
func (s *RedisStreamSink) Register(ctx context.Context) error {
	if err := s.c.SAdd(ctx, s.nodesKey, s.node).Err(); err != nil {
		return fmt.Errorf("audit/redis: SADD %s: %w", s.nodesKey, err)
	}
	return nil
}

var _ Sink = (*RedisStreamSink)(nil)

// appendScript adds entries (ID, line pairs in ARGV) to the stream KEYS[1].
// IDs increase within a batch, so only the first XADD can fail, before
// anything is written.
var appendScript = redis.NewScript(`
for i = 1, #ARGV, 2 do
  redis.call('XADD', KEYS[1], ARGV[i], 'e', ARGV[i+1])
end
return #ARGV / 2
`)

// NewRedisStreamSink returns a sink on cfg.Client. It checks the
// persistence settings unless cfg.SkipDurabilityCheck is set.
func NewRedisStreamSink(ctx context.Context, cfg RedisConfig) (*RedisStreamSink, error) {
	if cfg.Client == nil {
		return nil, errors.New("audit/redis: Client is required")
	}
	if !nodeRE.MatchString(cfg.Node) {
		return nil, errors.New("audit/redis: Node must be 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit")
	}
	s := &RedisStreamSink{c: cfg.Client, cpc: cfg.CheckpointClient, node: cfg.Node,
		stream: StreamKey(cfg.Prefix, cfg.Node), cpKey: CheckpointKey(cfg.Prefix, cfg.Node), nodesKey: NodesKey(cfg.Prefix)}
	if s.cpc == nil {
		s.cpc = s.c
	}
	if !cfg.SkipDurabilityCheck {
		for _, c := range []redis.UniversalClient{s.c, s.cpc} {
			if err := checkDurability(ctx, c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func checkDurability(ctx context.Context, c redis.UniversalClient) error {
	check := func(ctx context.Context, c redis.Cmdable) error {
		m, err := c.ConfigGet(ctx, "append*").Result()
		if err != nil {
			return fmt.Errorf("audit/redis: reading the persistence settings (CONFIG GET): %w", err)
		}
		if m["appendonly"] != "yes" || m["appendfsync"] != "always" {
			return fmt.Errorf("audit/redis: Redis runs with appendonly %q and appendfsync %q; "+
				"the audit log needs appendonly yes and appendfsync always", m["appendonly"], m["appendfsync"])
		}
		return nil
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return check(ctx, n) })
	}
	return check(ctx, c)
}

// Append adds b's entries in one atomic script call.
func (s *RedisStreamSink) Append(ctx context.Context, b *Batch) error {
	n := b.Len()
	args := make([]any, 0, 2*n)
	ids := make([]byte, 0, 24*n)
	for i := range n {
		e, seq, cp := b.Entry(i)
		start := len(ids)
		ids = strconv.AppendUint(ids, seq, 10)
		if cp {
			ids = append(ids, "-*"...)
		} else {
			ids = append(ids, "-0"...)
		}
		args = append(args, ids[start:len(ids):len(ids)], e)
	}
	if err := appendScript.Run(ctx, s.c, []string{s.stream}, args...).Err(); err != nil {
		return fmt.Errorf("audit/redis: XADD to %s: %w", s.stream, err)
	}
	return nil
}

// redisPage is the entries read per XRANGE: records are usually about 1 KB,
// but a large decision's can reach MaxEntryBytes, so pages stay small.
const redisPage = 256

// Scan reads the stream from its first entry, a page at a time.
func (s *RedisStreamSink) Scan(ctx context.Context, fn func(entry []byte) error) error {
	return s.page(ctx, fn, false)
}

// ScanBack reads the stream from its last entry.
func (s *RedisStreamSink) ScanBack(ctx context.Context, fn func(entry []byte) error) error {
	return s.page(ctx, fn, true)
}

func (s *RedisStreamSink) page(ctx context.Context, fn func([]byte) error, reverse bool) error {
	from := "-"
	if reverse {
		from = "+"
	}
	for {
		var (
			msgs []redis.XMessage
			err  error
		)
		if reverse {
			msgs, err = s.c.XRevRangeN(ctx, s.stream, from, "-", redisPage).Result()
		} else {
			msgs, err = s.c.XRangeN(ctx, s.stream, from, "+", redisPage).Result()
		}
		if err != nil {
			return fmt.Errorf("audit/redis: reading %s: %w", s.stream, err)
		}
		for _, m := range msgs {
			e, _ := m.Values["e"].(string) // absent or not a string: "", which fails to decode
			if err := fn([]byte(e)); err != nil {
				return err
			}
		}
		if len(msgs) < redisPage {
			return nil
		}
		from = "(" + msgs[len(msgs)-1].ID
	}
}

// Checkpoint reads the checkpoint key.
func (s *RedisStreamSink) Checkpoint(ctx context.Context) ([]byte, error) {
	b, err := s.cpc.Get(ctx, s.cpKey).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit/redis: reading %s: %w", s.cpKey, err)
	}
	return b, nil
}

// PutCheckpoint sets the checkpoint key.
func (s *RedisStreamSink) PutCheckpoint(ctx context.Context, cp []byte) error {
	if err := s.cpc.Set(ctx, s.cpKey, cp, 0).Err(); err != nil {
		return fmt.Errorf("audit/redis: writing %s: %w", s.cpKey, err)
	}
	return nil
}
