package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics implements vault.Observer and httpapi.Metrics on a private
// Prometheus registry. Labels are route patterns, status codes, categories,
// purposes, grounds, decisions and reason codes: never tokens, values or
// subject ids.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	tokenized  *prometheus.CounterVec
	detokenize *prometheus.CounterVec
	decisions  *prometheus.CounterVec

	keyVersions   *prometheus.GaugeVec
	rewrapRunning prometheus.Gauge
	rewrapDone    prometheus.Gauge
	rewrapTotal   prometheus.Gauge

	store *opMetrics
	kek   *opMetrics
	audit *opMetrics
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fieldvault_http_requests_total", Help: "HTTP requests by route and status code."},
		[]string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "fieldvault_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}},
		[]string{"route"})
	m.tokenized = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fieldvault_fields_tokenized_total", Help: "Fields tokenised by category and outcome."},
		[]string{"category", "outcome"})
	m.detokenize = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fieldvault_fields_detokenized_total", Help: "Fields detokenised by category and outcome."},
		[]string{"category", "outcome"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fieldvault_decisions_total", Help: "Detokenise decisions by purpose, ground, decision and reason."},
		[]string{"purpose", "ground", "decision", "reason"})
	m.keyVersions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fieldvault_key_versions", Help: "Key versions per category and state; state=\"primary\" holds the primary version number."},
		[]string{"category", "state"})
	m.rewrapRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fieldvault_rewrap_running", Help: "1 while this replica runs a rewrap job."})
	m.rewrapDone = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fieldvault_rewrap_tokens_done", Help: "Tokens the current (or last) rewrap job has scanned."})
	m.rewrapTotal = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fieldvault_rewrap_tokens_total", Help: "Tokens in scope of the current (or last) rewrap job."})
	m.reg.MustRegister(m.requests, m.latency, m.tokenized, m.detokenize, m.decisions,
		m.keyVersions, m.rewrapRunning, m.rewrapDone, m.rewrapTotal,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.store = newOpMetrics(m.reg, "store", "Token store")
	m.kek = newOpMetrics(m.reg, "kek", "Key-encryption key")
	m.audit = newOpMetrics(m.reg, "audit", "Audit log")
	return m
}

func (m *metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *metrics) ObserveRequest(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) Tokenized(category, outcome string, n int) {
	m.tokenized.WithLabelValues(category, outcome).Add(float64(n))
}

func (m *metrics) Detokenized(category, outcome string, n int) {
	m.detokenize.WithLabelValues(category, outcome).Add(float64(n))
}

func (m *metrics) Decision(purpose, ground, decision, reason string, n int) {
	m.decisions.WithLabelValues(purpose, ground, decision, reason).Add(float64(n))
}

// KeyVersions implements vault.KeyObserver: the number of versions of a
// category in each state, and its primary version number.
func (m *metrics) KeyVersions(category string, states map[string]int, primary uint32) {
	for _, st := range []string{"enabled", "disabled", "destroyed"} {
		m.keyVersions.WithLabelValues(category, st).Set(float64(states[st]))
	}
	m.keyVersions.WithLabelValues(category, "primary").Set(float64(primary))
}

// Rewrap implements vault.KeyObserver.
func (m *metrics) Rewrap(done, total int64, running bool) {
	m.rewrapDone.Set(float64(done))
	m.rewrapTotal.Set(float64(total))
	if running {
		m.rewrapRunning.Set(1)
	} else {
		m.rewrapRunning.Set(0)
	}
}
