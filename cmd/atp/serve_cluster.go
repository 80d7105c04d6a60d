package main

import (
	"flag"
	"time"

	"github.com/atpgo/atp/server"
)

// clusterFlags are atp serve's flags for running as one replica of
// several (README: "Running more than one replica").
type clusterFlags struct {
	nats, prefix    *string
	ttl, probeEvery *time.Duration
}

func addClusterFlags(fs *flag.FlagSet) *clusterFlags {
	d := server.Defaults()
	return &clusterFlags{
		nats:       fs.String("nats", "", "run as one replica of a cluster: the NATS `URL` (nats://host:4222, with JetStream) every replica shares, beside a shared postgres:// --db (default $ATP_NATS)"),
		prefix:     fs.String("cluster-prefix", d.ClusterPrefix, "the first token of the cluster's NATS subjects and streams: clusters with different prefixes share one NATS apart"),
		ttl:        fs.Duration("presence-ttl", d.PresenceTTL, "a replica not heard from for this long is taken as gone; each announces itself every third of it"),
		probeEvery: fs.Duration("replica-probe-interval", d.ReplicaProbeInterval, "while calls are in flight on another replica, how often to check it is still on NATS"),
	}
}

func (f *clusterFlags) apply(e *env, cfg *server.Config) error {
	cfg.NATSURL = *f.nats
	if cfg.NATSURL == "" {
		cfg.NATSURL = e.getenv("ATP_NATS")
	}
	if cfg.NATSURL == "" {
		return nil
	}
	if *f.ttl <= 0 || *f.probeEvery <= 0 {
		return usagef("--presence-ttl and --replica-probe-interval must be positive")
	}
	cfg.ClusterPrefix, cfg.PresenceTTL, cfg.ReplicaProbeInterval = *f.prefix, *f.ttl, *f.probeEvery
	return nil
}
