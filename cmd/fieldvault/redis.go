package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/store"
	redisstore "github.com/fieldvault/fieldvault/vault/store/redis"
)

// redisLogger carries the Redis store's warnings (persistence settings,
// hash encoding limits), in the same JSON form as the server's log.
func redisLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, nil))
}

// openRedisStore opens the Redis store named by url (redis://,
// rediss://, redis-cluster://, redis-sentinel://; see
// redisstore.NewClient for the parameters).
func openRedisStore(ctx context.Context, url string) (store.Store, error) {
	s, err := redisstore.Open(ctx, url, redisstore.Options{Logger: redisLogger()})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return s, nil
}

// openRedisAuditSink opens node cfg.Node's audit stream on the Redis of
// cfg.Store, with a client of its own so that audit appends (and the access
// report's reads) do not queue behind large store pipelines. The sink
// refuses to start unless every master runs with appendonly yes and
// appendfsync always. The store's key prefix (the URL's prefix=, default
// fv:) starts the audit keys too, so deployments sharing one Redis stay
// apart. It returns the sink, its client and the key prefix.
func openRedisAuditSink(ctx context.Context, cfg *serveConfig) (*audit.RedisStreamSink, redis.UniversalClient, string, error) {
	if !strings.HasPrefix(cfg.Store, "redis") {
		return nil, nil, "", usagef("--audit redis-stream writes to the Redis of --store; give --store redis://... (or redis-cluster://, redis-sentinel://)")
	}
	var opt redisstore.Options // store parameters in the URL are not the sink's
	client, err := redisstore.NewClient(cfg.Store, &opt)
	if err != nil {
		return nil, nil, "", fmt.Errorf("audit: %w", err)
	}
	prefix := cmp.Or(opt.Prefix, redisstore.DefaultPrefix)
	sink, err := audit.NewRedisStreamSink(ctx, audit.RedisConfig{Client: client, Node: cfg.Node, Prefix: prefix})
	if err != nil {
		_ = client.Close()
		return nil, nil, "", fmt.Errorf("audit: %w", err)
	}
	return sink, client, prefix, nil
}

// redisAuditChains lists the chain of every node registered under prefix in
// the Redis of client, for the access report. Reading another node's chain
// needs no durability check: nothing is written.
func redisAuditChains(client redis.UniversalClient, prefix string) vault.AuditChains {
	return func(ctx context.Context) (map[string]audit.Source, error) {
		nodes, err := audit.RedisNodes(ctx, client, prefix)
		if err != nil {
			return nil, err
		}
		out := make(map[string]audit.Source, len(nodes))
		for _, n := range nodes {
			s, err := audit.NewRedisStreamSink(ctx, audit.RedisConfig{Client: client, Node: n, Prefix: prefix, SkipDurabilityCheck: true})
			if err != nil {
				return nil, err
			}
			out[n] = s
		}
		return out, nil
	}
}
