package pebble_test

import (
	"sync"
	"testing"

	"github.com/fieldvault/fieldvault/vault/store"
	"github.com/fieldvault/fieldvault/vault/store/pebble"
	"github.com/fieldvault/fieldvault/vault/store/storetest"
)

// dirs remembers each test store's directory, for reopening it.
var dirs sync.Map // *pebble.Store -> string

func open(t *testing.T) store.Store {
	t.Helper()
	dir := t.TempDir()
	s, err := pebble.Open(dir, pebble.Options{CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	dirs.Store(s, dir)
	return s
}

func reopen(t *testing.T, s store.Store) store.Store {
	t.Helper()
	dir, ok := dirs.Load(s)
	if !ok {
		t.Fatal("reopen of a store not opened by open")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, err := pebble.Open(dir.(string), pebble.Options{CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	dirs.Store(s2, dir)
	return s2
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
}

func TestDurability(t *testing.T) {
	storetest.RunDurability(t, open, reopen)
}
