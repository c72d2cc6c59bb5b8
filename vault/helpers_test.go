package vault_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldvault/fieldvault/vault/internal/vaulttest"
)

// rawPost posts a JSON body with the root key and returns the body.
func rawPost(t *testing.T, s *vaulttest.Stack, path, body string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.Server.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+vaulttest.RootToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
