package main

import (
	"flag"
	"time"

	"github.com/atpgo/atp/server"
)

// limitFlags are atp serve's flags for the server's limits (the README's
// "Limits" table). Each sets the server.Config field of the same meaning;
// its default is the server's.
type limitFlags struct {
	ints      []intLimit
	durations []durationLimit
}

type intLimit struct {
	name string
	v    *int64
	set  func(*server.Config, int64)
}

type durationLimit struct {
	name string
	v    *time.Duration
	set  func(*server.Config, time.Duration)
}

func addLimitFlags(fs *flag.FlagSet) *limitFlags {
	d := server.Defaults()
	f := &limitFlags{}
	n := func(name string, def int64, usage string, set func(*server.Config, int64)) {
		f.ints = append(f.ints, intLimit{name, fs.Int64(name, def, usage), set})
	}
	t := func(name string, def time.Duration, usage string, set func(*server.Config, time.Duration)) {
		f.durations = append(f.durations, durationLimit{name, fs.Duration(name, def, usage), set})
	}
	n("max-connections", int64(d.MaxConnections), "open TCP connections at most (WebSockets included); past it: 503", func(c *server.Config, v int64) { c.MaxConnections = int(v) })
	n("max-header-bytes", int64(d.MaxHeaderBytes), "bytes of a request's headers at most; past it: 431", func(c *server.Config, v int64) { c.MaxHeaderBytes = int(v) })
	t("read-header-timeout", d.ReadHeaderTimeout, "time to send a request's headers", func(c *server.Config, v time.Duration) { c.ReadHeaderTimeout = v })
	n("body-limit", d.BodyLimit, "bytes of a request body at most; past it: 413", func(c *server.Config, v int64) { c.BodyLimit = v })
	t("body-read-timeout", d.BodyReadTimeout, "time to send a body once its key is known (and a WebSocket message past 64 KiB); past it: 408", func(c *server.Config, v time.Duration) { c.BodyReadTimeout = v })
	t("write-timeout", d.WriteTimeout, "time to write one response, from its first byte", func(c *server.Config, v time.Duration) { c.WriteTimeout = v })
	t("idle-timeout", d.IdleTimeout, "an idle keep-alive connection is closed after this", func(c *server.Config, v time.Duration) { c.IdleTimeout = v })
	n("unauth-body-limit", d.UnauthBodyLimit, "bytes of a body read before its key is known (api_key must come within them); past it: 413", func(c *server.Config, v int64) { c.UnauthBodyLimit = v })
	t("unauth-read-timeout", d.UnauthReadTimeout, "time to send a body up to its key; past it: 408", func(c *server.Config, v time.Duration) { c.UnauthReadTimeout = v })
	n("max-unauth-requests", int64(d.MaxUnauthRequests), "requests and LLM WebSockets not authenticated yet, at once; past it: 503", func(c *server.Config, v int64) { c.MaxUnauthRequests = int(v) })
	n("frame-limit", d.FrameLimit, "bytes of a WebSocket message at most; past it the connection closes with 1009", func(c *server.Config, v int64) { c.FrameLimit = v })
	n("max-conns-per-key", int64(d.MaxConnsPerKey), "WebSocket connections per key; past it: 429", func(c *server.Config, v int64) { c.MaxConnsPerKey = int(v) })
	n("max-requests-per-key", int64(d.MaxRequestsPerKey), "HTTP requests in progress per key (long polls included); past it: 429", func(c *server.Config, v int64) { c.MaxRequestsPerKey = int(v) })
	n("max-pending-per-toolkit", int64(d.MaxPendingPerToolkit), "calls waiting for one toolkit's answers; past it a call fails at once", func(c *server.Config, v int64) { c.MaxPendingPerToolkit = int(v) })
	n("max-pending-per-llm-key", int64(d.MaxPendingPerLLMKey), "calls of one LLM key waiting for answers; past it a call fails at once", func(c *server.Config, v int64) { c.MaxPendingPerLLMKey = int(v) })
	n("max-pending-bytes-per-llm-key", d.MaxPendingBytesPerLLMKey, "params bytes of the calls of one LLM key waiting for answers; past it a call fails at once", func(c *server.Config, v int64) { c.MaxPendingBytesPerLLMKey = v })
	n("max-write-queue-bytes", d.MaxWriteQueueBytes, "bytes waiting to be written to one WebSocket peer (an LLM client or toolkit that does not read); past it the connection closes and its calls fail", func(c *server.Config, v int64) { c.MaxWriteQueueBytes = v })
	n("max-tools-per-toolkit", int64(d.MaxToolsPerToolkit), "tools of one toolkit; registering one more: 409", func(c *server.Config, v int64) { c.MaxToolsPerToolkit = int(v) })
	t("ping-interval", d.PingInterval, "WebSocket keepalive ping period", func(c *server.Config, v time.Duration) { c.PingInterval = v })
	t("pong-timeout", d.PongTimeout, "time a WebSocket peer has to answer a ping; then it is dropped and its calls fail", func(c *server.Config, v time.Duration) { c.PongTimeout = v })
	t("inbox-lease", d.InboxOnlineWindow, "an inbox toolkit is online this long after its last poll; then its queued calls fail", func(c *server.Config, v time.Duration) { c.InboxOnlineWindow = v })
	t("revocation-check", d.RevocationCheckInterval, "how often to look for keys revoked by atp keys revoke", func(c *server.Config, v time.Duration) { c.RevocationCheckInterval = v })
	n("max-schema-bytes", int64(d.MaxSchemaBytes), "bytes of a tool schema (input or output, compacted) register_tool accepts; past it: 400", func(c *server.Config, v int64) { c.MaxSchemaBytes = int(v) })
	n("max-schema-depth", int64(d.MaxSchemaDepth), "levels of nesting of objects and arrays in a tool schema; past it: 400", func(c *server.Config, v int64) { c.MaxSchemaDepth = int(v) })
	n("max-schema-enum", int64(d.MaxSchemaEnum), "values one enum of a tool schema may list; past it: 400", func(c *server.Config, v int64) { c.MaxSchemaEnum = int(v) })
	n("max-schema-properties", int64(d.MaxSchemaProperties), "properties (and required names) of one object of a tool schema; past it: 400", func(c *server.Config, v int64) { c.MaxSchemaProperties = int(v) })
	t("webhook-retention", d.WebhookRetention, "how long the record of a webhook delivery that succeeded or was given up is kept in the store", func(c *server.Config, v time.Duration) { c.WebhookRetention = v })
	n("platools-registers-per-minute", int64(d.PlatoolsRegistersPerMinute), "tool_register frames of one Platools toolkit and environment in any minute; past it: register_throttled", func(c *server.Config, v int64) { c.PlatoolsRegistersPerMinute = int(v) })
	n("platools-result-limit", int64(d.PlatoolsMaxResultBytes), "bytes of a Platools tool_result passed on whole; past it the LLM gets a truncated preview", func(c *server.Config, v int64) { c.PlatoolsMaxResultBytes = int(v) })
	n("max-peer-warnings", int64(d.MaxPeerWarnings), "warnings logged per minute about one connection's bad frames; the rest are counted", func(c *server.Config, v int64) { c.MaxPeerWarnings = int(v) })
	return f
}

// apply checks the values (each must be positive: 0 would silently mean
// the default) and sets them in cfg.
func (f *limitFlags) apply(cfg *server.Config) error {
	for _, l := range f.ints {
		if *l.v <= 0 {
			return usagef("--%s: expected a positive number, got %d", l.name, *l.v)
		}
		l.set(cfg, *l.v)
	}
	for _, l := range f.durations {
		if *l.v <= 0 {
			return usagef("--%s: expected a positive duration, got %s", l.name, *l.v)
		}
		l.set(cfg, *l.v)
	}
	return nil
}
