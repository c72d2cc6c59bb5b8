package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()
	redirect := httptest.NewServer(http.RedirectHandler(srv.URL+"/readyz", http.StatusFound))
	defer redirect.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	cases := []struct {
		name   string
		status int
		args   []string
		want   int
	}{
		{"ready", 200, []string{srv.URL + "/readyz"}, 0},
		{"not ready", 503, []string{srv.URL + "/readyz"}, 1},
		{"wrong path", 200, []string{srv.URL + "/nope"}, 1},
		{"redirect is not followed", 200, []string{redirect.URL}, 1},
		{"connection refused", 200, []string{closedURL + "/readyz"}, 1},
		{"self-signed rejected", 200, []string{tlsSrv.URL}, 1},
		{"self-signed accepted on request", 200, []string{"-insecure-skip-verify", tlsSrv.URL}, 0},
		{"two URLs", 200, []string{srv.URL, srv.URL}, 2},
		{"bad flag", 200, []string{"-nope"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status = c.status
			var stderr bytes.Buffer
			if got := run(c.args, &stderr); got != c.want {
				t.Fatalf("run(%q) = %d, want %d; stderr: %s", c.args, got, c.want, stderr.String())
			}
			if c.want == 1 && !strings.Contains(stderr.String(), "fieldvault-healthcheck:") {
				t.Errorf("no reason on stderr: %q", stderr.String())
			}
		})
	}
}
