// Command svcwait waits for the services the tests use to answer: the
// PostgreSQL database $ATP_TEST_POSTGRES names (a query) and the NATS
// server at $ATP_TEST_NATS (its INFO greeting). It exits non-zero, naming
// what did not answer, when one is set and does not answer in time, so
// that CI fails loudly before any test instead of skipping.
//
//	go run ./internal/cmd/svcwait [-timeout 60s]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	timeout := flag.Duration("timeout", 60*time.Second, "how long to wait for each service")
	flag.Parse()
	failed := false
	check := func(name, value string, ping func(context.Context, string) error) {
		if value == "" {
			fmt.Printf("%s: not set\n", name)
			return
		}
		if err := wait(*timeout, func(ctx context.Context) error { return ping(ctx, value) }); err != nil {
			fmt.Fprintf(os.Stderr, "%s: does not answer after %s: %v\n", name, *timeout, err)
			failed = true
			return
		}
		fmt.Printf("%s: answers\n", name)
	}
	check("ATP_TEST_POSTGRES", os.Getenv("ATP_TEST_POSTGRES"), pingPostgres)
	check("ATP_TEST_NATS", os.Getenv("ATP_TEST_NATS"), pingNATS)
	if failed {
		os.Exit(1)
	}
}

// wait retries ping every half second until it succeeds or timeout passes.
func wait(timeout time.Duration, ping func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := ping(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func pingPostgres(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// pingNATS reads the INFO line a NATS server greets every client with.
func pingNATS(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("expected nats://host:port, got %q", raw)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "INFO ") {
		return errors.New("the server did not greet with INFO: not NATS")
	}
	return nil
}
