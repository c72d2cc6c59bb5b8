package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

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

// openRedisAuditSink opens the audit stream sink on the Redis of
// --store, with a client of its own so that audit appends do not queue
// behind large store pipelines. The sink refuses to start unless every
// master runs with appendonly yes and appendfsync always.
func openRedisAuditSink(ctx context.Context, cfg *serveConfig) (audit.Sink, func() error, error) {
	if !strings.HasPrefix(cfg.Store, "redis") {
		return nil, nil, usagef("--audit redis-stream writes to the Redis of --store; give --store redis://... (or redis-cluster://, redis-sentinel://)")
	}
	var opt redisstore.Options // store parameters in the URL are not the sink's
	client, err := redisstore.NewClient(cfg.Store, &opt)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	sink, err := audit.NewRedisStreamSink(ctx, audit.RedisConfig{Client: client, Node: cfg.Node})
	if err != nil {
		_ = client.Close()
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	return sink, client.Close, nil
}
