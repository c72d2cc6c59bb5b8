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
	m.reg.MustRegister(m.requests, m.latency, m.tokenized, m.detokenize, m.decisions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
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
