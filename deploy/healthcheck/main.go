// Command fieldvault-healthcheck exits 0 when a URL answers 200 OK and 1
// otherwise. It is the container healthcheck of deploy/Dockerfile's image,
// whose distroless runtime has no shell, curl or wget:
//
//	fieldvault-healthcheck [-timeout 3s] [-insecure-skip-verify] [URL]
//
// The URL defaults to http://127.0.0.1:8280/readyz. Kubernetes does not need
// it: its probes are httpGet probes.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

const defaultURL = "http://127.0.0.1:8280/readyz"

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

// run returns the exit code: 0 healthy, 1 unhealthy, 2 usage error.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("fieldvault-healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	insecure := fs.Bool("insecure-skip-verify", false, "accept any TLS certificate (a self-signed one on loopback)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "fieldvault-healthcheck: at most one URL")
		return 2
	}
	url := defaultURL
	if fs.NArg() == 1 {
		url = fs.Arg(0)
	}
	if err := check(url, *timeout, *insecure); err != nil {
		fmt.Fprintf(stderr, "fieldvault-healthcheck: %v\n", err)
		return 1
	}
	return 0
}

func check(url string, timeout time.Duration, insecure bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // opt-in, for a self-signed certificate on loopback
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return errors.New("redirects are not followed")
	}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
