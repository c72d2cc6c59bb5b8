package testredis

import (
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

func TestStandaloneAndCluster(t *testing.T) {
	a := Addr(t)
	out, err := command(a, "CONFIG", "GET", "appendfsync")
	if err != nil {
		t.Fatal(err)
	}
	_ = out
	seeds := ClusterAddrs(t)
	if len(seeds) != 3 {
		t.Fatalf("cluster seeds = %d, want 3", len(seeds))
	}
	info, err := command(seeds[0], "CLUSTER", "INFO")
	if err != nil || !strings.Contains(info, "cluster_known_nodes:3") {
		t.Fatalf("cluster info = %q, %v", info, err)
	}
}
