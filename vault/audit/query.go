package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
)

// Records iterates over the records of src in log order, skipping
// checkpoints. It does not verify the chain (run Verify for that); an entry
// that does not decode ends the iteration with an error wrapping
// ErrTampered. Each record is freshly allocated and the caller's to keep.
//
//	for rec, err := range audit.Records(ctx, src) {
//		if err != nil { return err }
//		...
//	}
func Records(ctx context.Context, src Source) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		stopped := false
		err := eachRecord(ctx, src, nil, func(r *Record) error {
			if !yield(r, nil) {
				stopped = true
				return errStop
			}
			return nil
		})
		if err != nil && !stopped {
			yield(nil, err)
		}
	}
}

// ForSubject calls fn for every record about the subject whose Ref is ref:
// records whose Subject or any of whose Items' Subject is ref. This is the
// data-subject access report's query: who accessed the subject's data, when,
// why and on what ground. Administrative records about a subject (suspend,
// erase, consent changes) must carry its Ref in Subject to be found. The
// chain is not verified. fn's error stops the walk and is returned.
func ForSubject(ctx context.Context, src Source, ref Ref, fn func(*Record) error) error {
	if ref == "" {
		return errors.New("audit: ForSubject: empty ref")
	}
	quoted := []byte(`"` + string(ref) + `"`)
	return eachRecord(ctx, src, quoted, func(r *Record) error {
		if r.Subject == ref {
			return fn(r)
		}
		for i := range r.Items {
			if r.Items[i].Subject == ref {
				return fn(r)
			}
		}
		return nil
	})
}

// eachRecord decodes the records of src, skipping lines that do not
// contain contains (when not nil) without decoding them.
func eachRecord(ctx context.Context, src Source, contains []byte, fn func(*Record) error) error {
	var idx int64 = -1
	err := src.Scan(ctx, func(e []byte) error {
		idx++
		if isCheckpointEntry(e) || (contains != nil && !bytes.Contains(e, contains)) {
			return nil
		}
		r := new(Record)
		if err := json.Unmarshal(e, r); err != nil {
			return fmt.Errorf("%w: entry %d does not decode as a record", ErrTampered, idx)
		}
		return fn(r)
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}
