// Package greet is a small toolkit for the harness tests: plain parameters,
// an error, output on stdout, a crash and a tool that needs a token.
package greet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/atpgo/atp/runtime"
)

// Greet returns a friendly greeting.
//
// Parameters:
//   - name: who to greet, e.g. "Ada"
//   - times: how many times to say hello `jsonschema:"minimum=1,maximum=5"`
//
//atp:tool readonly
func Greet(ctx context.Context, name string, times int) (string, error) {
	if strings.TrimSpace(name) == "" {
		return "", errors.New("name is empty: give the name of the person to greet")
	}
	return strings.TrimSpace(strings.Repeat("Hello, "+name+"! ", times)), nil
}

// Shout prints its message on standard output, then returns it in capitals.
//
// Parameters:
//   - message: the message to shout, e.g. "hello"
//
//atp:tool
func Shout(message string) string {
	fmt.Println("shouting", message)
	return strings.ToUpper(message)
}

// Crash ends the process with the given exit code, as a buggy tool might.
//
// Parameters:
//   - code: the exit code, e.g. 3
//
//atp:tool destructive
func Crash(code int) error {
	os.Exit(code)
	return nil
}

// Whoami reports how long the end user's token is (never the token).
//
//atp:tool readonly
func Whoami(token runtime.AuthToken) int {
	return len(token)
}
