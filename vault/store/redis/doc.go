// Package redis is fieldvault's production store: a store.Store on Redis
// through go-redis's UniversalClient (standalone, Sentinel or Cluster).
package redis
