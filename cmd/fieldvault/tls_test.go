package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/client"
)

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serialN int64

func newSerial() *big.Int { serialN++; return big.NewInt(time.Now().UnixNano() + serialN) }

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue makes a leaf certificate; server ones are for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, name string, server bool) (certPEM, keyPEM []byte, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM, pair
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsRequest does GET /readyz with a client configured by conf.
func tlsRequest(addr string, conf *tls.Config) (int, error) {
	tr := &http.Transport{TLSClientConfig: conf}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	resp, err := hc.Get(addr + "/readyz")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestTLSAndMTLS serves HTTPS and mutual TLS with certificates made here, and
// checks that plain HTTP on a non-loopback address is refused.
func TestTLSAndMTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "fieldvault test CA")
	srvCert, srvKey, _ := ca.issue(t, "fieldvault server", true)
	_, _, clientPair := ca.issue(t, "fieldvault client", false)
	rogue := newTestCA(t, "rogue CA")
	_, _, roguePair := rogue.issue(t, "rogue client", false)
	certFile := writeFile(t, dir, "server.pem", srvCert)
	keyFile := writeFile(t, dir, "server-key.pem", srvKey)
	caFile := writeFile(t, dir, "ca.pem", ca.pem)

	t.Run("TLS", func(t *testing.T) {
		t.Parallel()
		d := t.TempDir()
		conf := &tls.Config{RootCAs: ca.pool(), MinVersion: tls.VersionTLS12}
		s := startServer(t, d, devLaunch(t, d, "--tls-cert", certFile, "--tls-key", keyFile), conf)
		if !strings.HasPrefix(s.addr, "https://127.0.0.1:") {
			t.Fatalf("server address %q, want https://127.0.0.1:...", s.addr)
		}
		res, err := s.root().Tokenize(context.Background(), &vault.TokenizeRequest{Items: []vault.TokenizeItem{
			{Category: "identity.name", Value: "Over TLS", Subject: "tls-subject"}}})
		if err != nil || res.Items[0].Token == "" {
			t.Fatalf("tokenize over TLS: %+v, %v", res, err)
		}
		// A client that does not trust the CA is refused by its own TLS layer.
		if _, err := tlsRequest(s.addr, &tls.Config{MinVersion: tls.VersionTLS12}); err == nil {
			t.Error("a client without the CA connected")
		}
		// Plain HTTP to the TLS port gets no API answer.
		if code, err := tlsRequest(strings.Replace(s.addr, "https://", "http://", 1), nil); err == nil && code == 200 {
			t.Error("plain HTTP was served on the TLS port")
		}
	})

	t.Run("mTLS", func(t *testing.T) {
		t.Parallel()
		d := t.TempDir()
		good := &tls.Config{RootCAs: ca.pool(), Certificates: []tls.Certificate{clientPair}, MinVersion: tls.VersionTLS12}
		s := startServer(t, d, devLaunch(t, d, "--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", caFile), good)
		c, err := client.New(s.addr, e2eRootToken, client.WithTLSConfig(good))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Tokenize(context.Background(), &vault.TokenizeRequest{Items: []vault.TokenizeItem{
			{Category: "identity.name", Value: "Over mTLS", Subject: "mtls-subject"}}}); err != nil {
			t.Fatalf("tokenize with a client certificate: %v", err)
		}
		for name, conf := range map[string]*tls.Config{
			"no client certificate": {RootCAs: ca.pool(), MinVersion: tls.VersionTLS12},
			// GetClientCertificate presents the rogue certificate even though
			// the server's request names only its own CA.
			"certificate of another CA": {RootCAs: ca.pool(), MinVersion: tls.VersionTLS12,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &roguePair, nil }},
			"no client certificate (TLS 1.2)": {RootCAs: ca.pool(), MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12},
		} {
			code, err := tlsRequest(s.addr, conf)
			if err == nil {
				t.Errorf("%s: got HTTP %d, want a TLS failure", name, code)
				continue
			}
			t.Logf("%s: refused: %v", name, err)
			var verr *tls.CertificateVerificationError
			if errors.As(err, &verr) {
				t.Errorf("%s: the client refused the server, not the other way round: %v", name, err)
			} else if !strings.Contains(err.Error(), "tls: ") && !strings.Contains(err.Error(), "reset by peer") &&
				!strings.Contains(err.Error(), "EOF") {
				t.Errorf("%s: not a TLS-layer refusal: %v", name, err)
			}
		}
		// The refused handshakes reached no handler: no request was logged
		// beyond the successful ones.
		if n := strings.Count(s.stderr.String(), `"status":401`); n != 0 {
			t.Errorf("refused clients reached the API (%d 401s logged)", n)
		}
	})

	t.Run("plain HTTP off loopback refused", func(t *testing.T) {
		t.Parallel()
		port := freePort(t)
		d := filepath.Join(t.TempDir(), "data")
		cmd := exec.Command(fieldvaultBin(t), "serve", "--dev", "--dev-root-token="+e2eRootToken,
			"--data-dir", d, "--listen", fmt.Sprintf("0.0.0.0:%d", port))
		cmd.Env = childEnv()
		var outb, errb syncBuffer
		cmd.Stdout, cmd.Stderr = &outb, &errb
		setChildAttrs(cmd)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		// While it runs (briefly), nothing may accept connections on the port.
		deadline := time.After(60 * time.Second)
	poll:
		for {
			select {
			case <-done:
				break poll
			case <-deadline:
				_ = cmd.Process.Kill()
				<-done
				t.Fatal("serve on 0.0.0.0 without TLS did not exit")
			default:
			}
			if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond); err == nil {
				conn.Close()
				t.Error("something listens on the port: the server bound 0.0.0.0 without TLS")
			}
			time.Sleep(10 * time.Millisecond)
		}
		code, stdout, stderr := cmd.ProcessState.ExitCode(), outb.String(), errb.String()
		if code != 2 {
			t.Errorf("exit code %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if !strings.Contains(stderr, "refusing plain HTTP") || !strings.Contains(stderr, "--insecure-http") ||
			!strings.Contains(stderr, "--tls-cert") {
			t.Errorf("the error does not say what is wrong and how to fix it:\n%s", stderr)
		}
		if strings.Contains(stdout, "listening") {
			t.Errorf("the server claims to listen:\n%s", stdout)
		}
	})
}
