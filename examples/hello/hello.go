// Package hello is the smallest atp toolkit: tools with plain parameters.
package hello

import (
	"context"
	"errors"
	"strings"
)

//go:generate go tool atpgen

// Greet returns a friendly greeting.
//
// Parameters:
//   - name: who to greet, e.g. "Ada"
//   - times: how many times to say hello `jsonschema:"minimum=1,maximum=5"`
//
//atp:tool readonly idempotent
func Greet(ctx context.Context, name string, times int) (string, error) {
	if strings.TrimSpace(name) == "" {
		return "", errors.New("name is empty: give the name of the person to greet")
	}
	return strings.Repeat("Hello, "+name+"! ", times-1) + "Hello, " + name + "!", nil
}

// Add returns the sum of two numbers.
//
// Parameters:
//   - a: the first addend
//   - b: the second addend
//
//atp:tool readonly idempotent
func Add(a, b float64) float64 {
	return a + b
}
