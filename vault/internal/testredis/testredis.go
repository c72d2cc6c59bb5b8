// Package testredis gives tests a real Redis: a standalone server and a
// 3-master Redis Cluster on loopback ports.
//
// When FIELDVAULT_TEST_REDIS (host:port) or FIELDVAULT_TEST_REDIS_CLUSTER
// (comma-separated host:port seeds) are set, as the README's test command
// does, those servers are used. Otherwise the package starts its own
// redis-server processes in a temporary directory, once per test binary, and
// stops them when Cleanup is called from TestMain. A missing redis-server
// binary fails the test with a hint: these tests are never skipped.
package testredis

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	mu        sync.Mutex
	started   []*exec.Cmd
	tmpDirs   []string
	single    string
	cluster   []string
	startErrS error
	startErrC error
	doneS     bool
	doneC     bool
)

// Addr returns the address of a standalone Redis with AOF and
// appendfsync always.
func Addr(t testing.TB) string {
	t.Helper()
	if a := os.Getenv("FIELDVAULT_TEST_REDIS"); a != "" {
		return a
	}
	mu.Lock()
	defer mu.Unlock()
	if !doneS {
		doneS = true
		single, startErrS = startServer(nil)
	}
	if startErrS != nil {
		t.Fatalf("testredis: %v", startErrS)
	}
	return single
}

// ClusterAddrs returns the seed addresses of a 3-master Redis Cluster.
func ClusterAddrs(t testing.TB) []string {
	t.Helper()
	if a := os.Getenv("FIELDVAULT_TEST_REDIS_CLUSTER"); a != "" {
		return strings.Split(a, ",")
	}
	mu.Lock()
	defer mu.Unlock()
	if !doneC {
		doneC = true
		cluster, startErrC = startCluster()
	}
	if startErrC != nil {
		t.Fatalf("testredis: %v", startErrC)
	}
	return cluster
}

// Cleanup stops every server this package started. Call it from TestMain
// after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	for _, c := range started {
		_ = c.Process.Kill()
		_, _ = c.Process.Wait()
	}
	started = nil
	for _, d := range tmpDirs {
		_ = os.RemoveAll(d)
	}
	tmpDirs = nil
}

func binary(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found in PATH: install it (apt-get install redis-server) or run the README's test command, which does", name)
	}
	return p, nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartServer starts one redis-server with AOF (appendfsync always) in dir
// on port and returns its command. Tests that kill and restart Redis use it
// directly.
func StartServer(dir string, port int, extra ...string) (*exec.Cmd, error) {
	bin, err := binary("redis-server")
	if err != nil {
		return nil, err
	}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--appendonly", "yes",
		"--appendfsync", "always",
		"--save", "",
		"--protected-mode", "no",
		"--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	tieToParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitPing(addr, 10*time.Second); err != nil {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		return nil, err
	}
	return cmd, nil
}

func startServer(extra []string) (string, error) {
	dir, err := os.MkdirTemp("", "fv-redis-")
	if err != nil {
		return "", err
	}
	tmpDirs = append(tmpDirs, dir)
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	cmd, err := StartServer(dir, port, extra...)
	if err != nil {
		return "", err
	}
	started = append(started, cmd)
	return fmt.Sprintf("127.0.0.1:%d", port), nil
}

func startCluster() ([]string, error) {
	var addrs []string
	for i := 0; i < 3; i++ {
		a, err := startServer([]string{"--cluster-enabled", "yes", "--cluster-node-timeout", "5000",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", i)})
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
	}
	cli, err := binary("redis-cli")
	if err != nil {
		return nil, err
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, a := range addrs {
			info, err := command(a, "CLUSTER", "INFO")
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ok = false
				break
			}
		}
		if ok {
			return addrs, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("cluster did not reach cluster_state:ok")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitPing(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if out, err := command(addr, "PING"); err == nil && strings.Contains(out, "PONG") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis at %s did not answer PING", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// command sends one RESP command and returns the raw reply, enough for
// PING and CLUSTER INFO without a client library.
func command(addr string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "$") {
		n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}
