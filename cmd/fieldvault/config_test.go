package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// TestConfigPrecedence checks flags > environment > config file, observed
// through the address the server actually listens on.
func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	writeConfig := func(t *testing.T, cfg map[string]any) string {
		t.Helper()
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, t.TempDir(), "fieldvault.json", b)
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }

	cases := []struct {
		name string
		// mk returns the launch and the port that must win.
		mk func(t *testing.T, dir string, file, env, flag int) (launch, int)
	}{
		{"file only", func(t *testing.T, dir string, file, env, flag int) (launch, int) {
			cfg := writeConfig(t, map[string]any{"listen": addr(file)})
			return launch{args: []string{"--config", cfg, "--dev", "--dev-root-token=" + e2eRootToken, "--data-dir", dir}}, file
		}},
		{"env over file", func(t *testing.T, dir string, file, env, flag int) (launch, int) {
			cfg := writeConfig(t, map[string]any{"listen": addr(file)})
			return launch{args: []string{"--config", cfg, "--dev", "--dev-root-token=" + e2eRootToken, "--data-dir", dir},
				env: []string{"FIELDVAULT_LISTEN=" + addr(env)}}, env
		}},
		{"flag over env over file", func(t *testing.T, dir string, file, env, flag int) (launch, int) {
			cfg := writeConfig(t, map[string]any{"listen": addr(file)})
			return launch{args: []string{"--config", cfg, "--dev", "--dev-root-token=" + e2eRootToken, "--data-dir", dir,
				"--listen", addr(flag)}, env: []string{"FIELDVAULT_LISTEN=" + addr(env)}}, flag
		}},
		{"flag over file", func(t *testing.T, dir string, file, env, flag int) (launch, int) {
			cfg := writeConfig(t, map[string]any{"listen": addr(file)})
			return launch{args: []string{"--config", cfg, "--dev", "--dev-root-token=" + e2eRootToken, "--data-dir", dir,
				"--listen=" + addr(flag)}}, flag
		}},
		{"config file from FIELDVAULT_CONFIG", func(t *testing.T, dir string, file, env, flag int) (launch, int) {
			cfg := writeConfig(t, map[string]any{"listen": addr(file)})
			return launch{args: []string{"--dev", "--dev-root-token=" + e2eRootToken, "--data-dir", dir},
				env: []string{"FIELDVAULT_CONFIG=" + cfg}}, file
		}},
		{"everything from the environment over the file", func(t *testing.T, dir string, file, env, flag int) (launch, int) {
			cfg := writeConfig(t, map[string]any{"listen": addr(file), "dev": true, "dev-root-token": "file-root-token-xx"})
			return launch{args: []string{"--config", cfg}, env: []string{"FIELDVAULT_LISTEN=" + addr(env),
				"FIELDVAULT_DEV_ROOT_TOKEN=" + e2eRootToken, "FIELDVAULT_DATA_DIR=" + dir}}, env
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var want int
			s := startServer(t, dir, func() launch {
				l, w := c.mk(t, dir, freePort(t), freePort(t), freePort(t))
				want, l.port = w, w
				return l
			}, nil)
			if s.addr != "http://"+addr(want) {
				t.Errorf("listening on %s, want http://%s", s.addr, addr(want))
			}
			if !fileExists(filepath.Join(dir, "kek.key")) {
				t.Errorf("the data directory %s was not used", dir)
			}
		})
	}

	// A data directory given in the config file is a data directory given:
	// --dev must use it and keep it, as it does for --data-dir.
	t.Run("dev keeps the config file's data-dir", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "from-config")
		s := startServer(t, dir, func() launch {
			p := freePort(t)
			cfg := writeConfig(t, map[string]any{"listen": addr(p), "data-dir": dir})
			return launch{args: []string{"--config", cfg, "--dev", "--dev-root-token=" + e2eRootToken}, port: p}
		}, nil)
		m := regexp.MustCompile(`"data_dir":"([^"]*)"`).FindStringSubmatch(s.stderr.String())
		if m == nil || m[1] != dir {
			t.Errorf("the server uses data directory %v, want %s (from the config file)", m, dir)
		}
		s.stop(syscall.SIGTERM, 20*time.Second)
		if _, err := os.Stat(filepath.Join(dir, "kek.key")); err != nil {
			t.Errorf("the config file's data directory holds no KEK after the run: %v", err)
		}
	})
}
