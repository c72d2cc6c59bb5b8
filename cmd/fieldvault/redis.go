package main

import (
	"context"
	"errors"

	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/store"
)

// errRedisPending is returned until the Redis store lands (issue 4).
var errRedisPending = errors.New("the Redis store is not available in this build yet; use --store pebble")

func openRedisStore(ctx context.Context, url string) (store.Store, error) {
	return nil, errRedisPending
}

func openRedisAuditSink(ctx context.Context, cfg *serveConfig) (audit.Sink, func() error, error) {
	return nil, nil, errRedisPending
}
