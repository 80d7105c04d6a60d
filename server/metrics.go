package server

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

// metrics are exported at /metrics in the Prometheus text format (version
// 0.0.4). The format is a few lines of text: writing it by hand keeps
// client_golang and its dependency tree out of the server.
type metrics struct {
	// successes and failures count answered task_requests by status.
	successes, failures atomic.Int64
	// errors counts failed task_requests by reason: one counter per reason,
	// all made at start, so the map is only read afterwards.
	errors map[string]*atomic.Int64
	// lateReplies counts tool replies that arrived after their call ended.
	lateReplies atomic.Int64
	// llmOverflows and toolkitOverflows count the WebSockets closed for
	// leaving more than Config.MaxWriteQueueBytes unread.
	llmOverflows, toolkitOverflows atomic.Int64

	latency histogram // of routed calls, from routing to reply
}

// Reasons a call fails, the label values of atp_call_errors_total.
const (
	reasonToolError     = "tool_error"
	reasonInvalidParams = "invalid_params"
	reasonNotFound      = "not_found"
	reasonOffline       = "offline"
	reasonTimeout       = "timeout"
	reasonDisconnected  = "disconnected"
	reasonCanceled      = "canceled"
	reasonBadRequest    = "bad_request"
	reasonShutdown      = "shutdown"
	reasonLimit         = "limit" // a server limit (pending calls) refused it
)

var reasons = []string{reasonToolError, reasonInvalidParams, reasonNotFound, reasonOffline, reasonTimeout,
	reasonDisconnected, reasonCanceled, reasonBadRequest, reasonShutdown, reasonLimit}

func newMetrics() *metrics {
	m := &metrics{
		errors:  make(map[string]*atomic.Int64, len(reasons)),
		latency: newHistogram([]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}),
	}
	for _, r := range reasons {
		m.errors[r] = new(atomic.Int64)
	}
	return m
}

// writeQueueFull records a WebSocket closed for leaving too much unread;
// peer is the session's.
func (m *metrics) writeQueueFull(peer string) {
	if peer == "llm" {
		m.llmOverflows.Add(1)
	} else {
		m.toolkitOverflows.Add(1)
	}
}

// callDone records a finished call; reason is "" for a success.
func (m *metrics) callDone(reason string) {
	if reason == "" {
		m.successes.Add(1)
		return
	}
	m.failures.Add(1)
	m.errors[reason].Add(1)
}

// histogram is a cumulative Prometheus histogram with fixed buckets.
type histogram struct {
	bounds []float64
	counts []atomic.Int64 // per bucket, not cumulative; last is +Inf
	sumNs  atomic.Int64
}

func newHistogram(bounds []float64) histogram {
	return histogram{bounds: bounds, counts: make([]atomic.Int64, len(bounds)+1)}
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := sort.SearchFloat64s(h.bounds, s) // first bound >= s: le is inclusive
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// gauges are read at scrape time from the live state.
type gauges struct {
	toolkitsConnected int
	connections       int
	llmConnections    int
	inFlight          int
}

func (m *metrics) write(w io.Writer, g gauges) {
	writeCounterSet(w, "atp_calls_total", "Tool calls (task_request) answered, by status.", "status",
		map[string]int64{"success": m.successes.Load(), "error": m.failures.Load()})
	errs := make(map[string]int64, len(m.errors))
	for r, c := range m.errors {
		errs[r] = c.Load()
	}
	writeCounterSet(w, "atp_call_errors_total", "Tool calls that failed, by reason.", "reason", errs)
	writeCounterSet(w, "atp_write_queue_overflows_total", "WebSocket connections closed because their peer left more than --max-write-queue-bytes unread, by peer.", "peer",
		map[string]int64{"llm": m.llmOverflows.Load(), "toolkit": m.toolkitOverflows.Load()})
	fmt.Fprintf(w, "# HELP atp_late_replies_total Toolkit replies dropped because their call had already ended.\n# TYPE atp_late_replies_total counter\natp_late_replies_total %d\n", m.lateReplies.Load())

	fmt.Fprintf(w, "# HELP atp_call_duration_seconds Time from routing a call to its toolkit's reply.\n# TYPE atp_call_duration_seconds histogram\n")
	var cum int64
	for i, b := range m.latency.bounds {
		cum += m.latency.counts[i].Load()
		fmt.Fprintf(w, "atp_call_duration_seconds_bucket{le=%q} %d\n", strconv.FormatFloat(b, 'g', -1, 64), cum)
	}
	cum += m.latency.counts[len(m.latency.bounds)].Load()
	fmt.Fprintf(w, "atp_call_duration_seconds_bucket{le=\"+Inf\"} %d\n", cum)
	fmt.Fprintf(w, "atp_call_duration_seconds_sum %s\n", formatFloat(float64(m.latency.sumNs.Load())/1e9))
	fmt.Fprintf(w, "atp_call_duration_seconds_count %d\n", cum)

	writeGauge(w, "atp_toolkits_connected", "Toolkits with at least one WebSocket connection.", g.toolkitsConnected)
	writeGauge(w, "atp_toolkit_connections", "Open toolkit WebSocket connections.", g.connections)
	writeGauge(w, "atp_llm_connections", "Open LLM-client WebSocket connections.", g.llmConnections)
	writeGauge(w, "atp_calls_in_flight", "Tool calls routed and waiting for their reply.", g.inFlight)
}

func writeCounterSet(w io.Writer, name, help, label string, values map[string]int64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
	labels := make([]string, 0, len(values))
	for l := range values {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		fmt.Fprintf(w, "%s{%s=%q} %d\n", name, label, l, values[l])
	}
}

func writeGauge(w io.Writer, name, help string, v int) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
}

func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w, s.hub.gauges())
	// How close the server is to its limits (Config.MaxConnections,
	// Config.MaxUnauthRequests).
	if l := s.conns.Load(); l != nil {
		writeGauge(w, "atp_open_connections", "Open TCP connections (limit: --max-connections).", l.openConns())
	}
	if s.cluster != nil {
		s.cluster.writeMetrics(w) // this replica's part of the cluster
	}
	writeGauge(w, "atp_unauthenticated_in_progress", "Requests and LLM WebSockets not authenticated yet (limit: --max-unauth-requests).", s.unauth.inUse())
	// The outbox is the database's, shared by every server on it.
	if s.oauth.vault != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if n, err := s.store.PendingDeliveries(ctx); err == nil {
			writeGauge(w, "atp_webhook_outbox_pending", "Webhook deliveries waiting to be sent, by every server on the database.", n)
		}
	}
	s.writePlatoolsMetrics(w)
}
