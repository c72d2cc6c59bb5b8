package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/store"
)

// opMetrics is a latency histogram and an error counter by operation.
type opMetrics struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

func newOpMetrics(reg *prometheus.Registry, subsystem, help string) *opMetrics {
	m := &opMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fieldvault_" + subsystem + "_operation_duration_seconds",
			Help:    help + " latency by operation.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}},
			[]string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldvault_" + subsystem + "_errors_total",
			Help: help + " failures by operation."}, []string{"operation"}),
	}
	reg.MustRegister(m.latency, m.errors)
	return m
}

func (m *opMetrics) observe(op string, start time.Time, err error) {
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
		m.errors.WithLabelValues(op).Inc()
	}
}

// instrStore times every store call. Labels are method names only.
type instrStore struct {
	store.Store
	m *opMetrics
}

func (s instrStore) InsertTokens(ctx context.Context, rows []store.Token) (r []store.InsertResult, err error) {
	defer s.m.observe("insert_tokens", time.Now(), err)
	return s.Store.InsertTokens(ctx, rows)
}

func (s instrStore) GetTokens(ctx context.Context, tokens []string) (r []*store.Token, err error) {
	defer s.m.observe("get_tokens", time.Now(), err)
	return s.Store.GetTokens(ctx, tokens)
}

func (s instrStore) LookupFingerprints(ctx context.Context, category uint16, fps [][]byte) (r []string, err error) {
	defer s.m.observe("lookup_fingerprints", time.Now(), err)
	return s.Store.LookupFingerprints(ctx, category, fps)
}

func (s instrStore) UpdateTokenKeys(ctx context.Context, u []store.KeyUpdate) (r []error, err error) {
	defer s.m.observe("update_token_keys", time.Now(), err)
	return s.Store.UpdateTokenKeys(ctx, u)
}

func (s instrStore) GetSubjectKeys(ctx context.Context, refs []store.SubjectKeyRef) (r [][]byte, err error) {
	defer s.m.observe("get_subject_keys", time.Now(), err)
	return s.Store.GetSubjectKeys(ctx, refs)
}

func (s instrStore) InsertSubjectKeys(ctx context.Context, refs []store.SubjectKeyRef, w [][]byte) (r [][]byte, err error) {
	defer s.m.observe("insert_subject_keys", time.Now(), err)
	return s.Store.InsertSubjectKeys(ctx, refs, w)
}

func (s instrStore) GetRecord(ctx context.Context, kind, id string) (r *store.Record, err error) {
	defer s.m.observe("get_record", time.Now(), err)
	return s.Store.GetRecord(ctx, kind, id)
}

func (s instrStore) GetRecords(ctx context.Context, kind string, ids []string) (r []*store.Record, err error) {
	defer s.m.observe("get_records", time.Now(), err)
	return s.Store.GetRecords(ctx, kind, ids)
}

func (s instrStore) PutRecord(ctx context.Context, rec store.Record, expectRev uint64) (r uint64, err error) {
	defer s.m.observe("put_record", time.Now(), err)
	return s.Store.PutRecord(ctx, rec, expectRev)
}

func (s instrStore) Ping(ctx context.Context) (err error) {
	defer s.m.observe("ping", time.Now(), err)
	return s.Store.Ping(ctx)
}

// instrKEK times KEK calls and counts failures (fieldvault_kek_errors_total
// is what the "KEK unavailable" alert watches). It forwards rotation,
// rewrapping and Close to the KEK when it has them.
type instrKEK struct {
	k kek.KEK
	m *opMetrics
}

func (k instrKEK) Wrap(ctx context.Context, pt, aad []byte) (b []byte, err error) {
	defer k.m.observe("wrap", time.Now(), err)
	return k.k.Wrap(ctx, pt, aad)
}

func (k instrKEK) Unwrap(ctx context.Context, w, aad []byte) (b []byte, err error) {
	defer k.m.observe("unwrap", time.Now(), err)
	return k.k.Unwrap(ctx, w, aad)
}

var errNotRotatable = errors.New("this KEK backend cannot rotate")

func (k instrKEK) Rotate(ctx context.Context) (err error) {
	defer k.m.observe("rotate", time.Now(), err)
	r, ok := k.k.(kek.Rotator)
	if !ok {
		return errNotRotatable
	}
	return r.Rotate(ctx)
}

func (k instrKEK) Close() error {
	if c, ok := k.k.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// instrAudit times audit appends.
type instrAudit struct {
	*audit.Log
	m *opMetrics
}

func (a instrAudit) Append(ctx context.Context, rec *audit.Record) (err error) {
	defer a.m.observe("append", time.Now(), err)
	return a.Log.Append(ctx, rec)
}
