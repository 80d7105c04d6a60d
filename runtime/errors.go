package runtime

import (
	"errors"

	"fmt"
	"github.com/atpgo/atp/runtime/atpimpl"
	"strings"
	"time"
)

// ErrUnknownTool is wrapped by the error for a call to a tool the toolkit
// does not have.
var ErrUnknownTool = errors.New("unknown tool")

// ErrMissingAuthToken is wrapped by the error for a call without an auth
// token to a tool that needs one. The tool is not called.
var ErrMissingAuthToken = errors.New("missing auth token")

// Problem is one thing wrong with a call's params: where (a JSON path such as
// "location.city" or "tags[2]", "" for the params object itself) and what.
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// String returns "path: message", or "params: message" at the root.
func (p Problem) String() string { return atpimpl.Problem(p).String() }

// problemsOf converts the problems a Decoder recorded.
func problemsOf(ps []atpimpl.Problem) []Problem {
	out := make([]Problem, len(ps))
	for i, p := range ps {
		out[i] = Problem(p)
	}
	return out
}

// ValidationError lists every problem found in a call's params. The tool was
// not called.
type ValidationError struct {
	Tool     string
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid params")
	if e.Tool != "" {
		b.WriteString(" for ")
		b.WriteString(e.Tool)
	}
	b.WriteString(": ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// ToolError is an error returned by the tool function itself.
type ToolError struct {
	Tool string
	Err  error
}

func (e *ToolError) Error() string { return e.Err.Error() }
func (e *ToolError) Unwrap() error { return e.Err }

// PanicError reports a tool that panicked. The stack is logged by the
// toolkit and kept here for callers that want it; it is not in the message.
type PanicError struct {
	Tool  string
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("tool %s failed: internal error (panic: %v)", e.Tool, e.Value)
}

// TimeoutError reports a call that did not finish within its timeout. The
// tool's context was cancelled.
type TimeoutError struct {
	Tool    string
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("tool %s timed out after %s", e.Tool, e.Timeout)
}
