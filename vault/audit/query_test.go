package audit

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestQueries(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			fx := be.setup(t)
			l := newLog(t, testConfig(fx.node, fx.sink))
			appendN(t, l, 10) // decisions about user-(i%5)
			admin := &Record{Type: TypeAdmin, Principal: "dpo-1", Action: "subject.suspend", Subject: l.Ref("user-2")}
			if err := l.Append(context.Background(), admin); err != nil {
				t.Fatal(err)
			}
			l.Close()
			ctx := context.Background()

			var got []string
			err := ForSubject(ctx, fx.sink, l.Ref("user-2"), func(r *Record) error {
				got = append(got, r.DecisionID+"/"+r.Action)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"d_000002/", "d_000007/", "/subject.suspend"}
			if !slices.Equal(got, want) {
				t.Errorf("ForSubject(user-2) = %v, want %v", got, want)
			}

			n := 0
			if err := ForSubject(ctx, fx.sink, l.Ref("nobody"), func(*Record) error { n++; return nil }); err != nil || n != 0 {
				t.Errorf("ForSubject(nobody): %d records, %v", n, err)
			}
			stop := errors.New("stop")
			if err := ForSubject(ctx, fx.sink, l.Ref("user-2"), func(*Record) error { return stop }); !errors.Is(err, stop) {
				t.Errorf("ForSubject did not return fn's error: %v", err)
			}

			var seqs []uint64
			for r, err := range Records(ctx, fx.sink) {
				if err != nil {
					t.Fatal(err)
				}
				seqs = append(seqs, r.Seq)
			}
			if len(seqs) != 11 || seqs[0] != 1 || seqs[10] != 11 || !slices.IsSorted(seqs) {
				t.Errorf("Records yielded seqs %v, want 1..11", seqs)
			}
			n = 0
			for range Records(ctx, fx.sink) {
				n++
				if n == 3 {
					break
				}
			}
			if n != 3 {
				t.Errorf("break after 3 records: %d", n)
			}
		})
	}
}

func TestRecordsReportsUndecodable(t *testing.T) {
	dir := t.TempDir()
	sink := openFileSink(t, dir)
	l := newLog(t, testConfig("node-a", sink))
	appendN(t, l, 2)
	l.Close()
	es := entries(t, sink)
	rewriteFile(t, dir, append(es, []byte(`{"seq":"three"}`)))
	ro, err := OpenFileSink(FileConfig{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var last error
	n := 0
	for r, err := range Records(context.Background(), ro) {
		if err != nil {
			last = err
			continue
		}
		if r != nil {
			n++
		}
	}
	if n != 2 || !errors.Is(last, ErrTampered) {
		t.Fatalf("Records: %d records then %v; want 2 and ErrTampered", n, last)
	}
}
