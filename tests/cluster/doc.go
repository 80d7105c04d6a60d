// Package cluster tests atp serve as several replicas on one PostgreSQL
// database and one NATS, behind a load balancer: replicas, NATS and the
// database's connections are killed and brought back while toolkits and
// LLM clients go on. It is a module of its own because it runs NATS in
// process (the nats-server module), which stays out of the main module's
// dependencies.
//
// Its tests need PostgreSQL: $ATP_TEST_POSTGRES (see internal/pgtest).
package cluster
