package vault_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/client"
	"github.com/fieldvault/fieldvault/vault/internal/vaulttest"
)

// brokenChain is an audit chain that cannot be read.
type brokenChain struct{}

func (brokenChain) Scan(context.Context, func([]byte) error) error {
	return errors.New("connection refused")
}
func (brokenChain) Checkpoint(context.Context) ([]byte, error) { return nil, nil }

// TestAccessReportFailsClosed: when any replica's chain cannot be read, or
// the chains cannot be listed, the access report is refused with
// AUDIT_UNAVAILABLE instead of being returned incomplete; with every chain
// readable it lists them all.
func TestAccessReportFailsClosed(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		chains func(own audit.Source) vault.AuditChains
		want   []string // nodes, or nil for AUDIT_UNAVAILABLE
	}{
		{"own chain only", nil, []string{"test"}},
		{"one chain unreadable", func(own audit.Source) vault.AuditChains {
			return func(context.Context) (map[string]audit.Source, error) {
				return map[string]audit.Source{"test": own, "other": brokenChain{}}, nil
			}
		}, nil},
		{"chains cannot be listed", func(audit.Source) vault.AuditChains {
			return func(context.Context) (map[string]audit.Source, error) { return nil, errors.New("SMEMBERS: timeout") }
		}, nil},
		{"two readable chains", func(own audit.Source) vault.AuditChains {
			return func(context.Context) (map[string]audit.Source, error) {
				return map[string]audit.Source{"test": own, "a-other": own}, nil
			}
		}, []string{"a-other", "test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := vaulttest.New(t, vaulttest.Options{AuditChains: tc.chains})
			if _, err := s.Root.PutSubject(ctx, "r1", &vault.PutSubjectRequest{Type: "data_subject", BirthDate: "1990-01-01"}); err != nil {
				t.Fatal(err)
			}
			rep, err := s.Root.AccessReport(ctx, "r1")
			if tc.want == nil {
				if !client.IsCode(err, vault.CodeAuditUnavailable) || rep != nil {
					t.Fatalf("report %+v, error %v; want AUDIT_UNAVAILABLE and no report", rep, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Nodes) != len(tc.want) || rep.Nodes[0] != tc.want[0] || rep.Nodes[len(rep.Nodes)-1] != tc.want[len(tc.want)-1] {
				t.Fatalf("nodes %v, want %v", rep.Nodes, tc.want)
			}
			// The subject's creation is in every chain read.
			if n := len(rep.Entries); n != len(tc.want) {
				t.Fatalf("%d entries, want %d (one subject.create per chain): %+v", n, len(tc.want), rep.Entries)
			}
			for i, e := range rep.Entries {
				if e.Action != "subject.create" || e.Node != tc.want[i] {
					t.Fatalf("entry %d: %+v", i, e)
				}
			}
		})
	}
}
