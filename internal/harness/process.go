package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/atpgo/atp/runtime"
)

// Request asks an Invoke harness to call one tool.
type Request struct {
	Tool   string          `json:"tool"`
	Params json.RawMessage `json:"params"`
	// AuthToken is the end user's token, for tools that need one.
	AuthToken string `json:"auth_token,omitempty"`
	// TimeoutMs bounds a call to a tool that declares no timeout; 0 means
	// no bound.
	TimeoutMs int64 `json:"timeout_ms,omitempty"`
	// Fresh makes the toolkit anew before the call, so that method tools
	// run on new receivers (from their constructors) instead of those of
	// earlier calls.
	Fresh bool `json:"fresh,omitempty"`
}

// Response is an Invoke harness's answer: Result, or Error with Kind (one
// of invalid_params, unknown_tool, missing_auth_token, panic, timeout,
// tool_error, error, constructor, harness) and, for invalid_params, the
// Problems. A constructor error means the toolkit could not be made: the
// tool was not called.
type Response struct {
	Result   json.RawMessage   `json:"result,omitempty"`
	Error    string            `json:"error,omitempty"`
	Kind     string            `json:"kind,omitempty"`
	Problems []runtime.Problem `json:"problems,omitempty"`
	// Nanos is how long the call took in the harness (decoding, validation
	// and the tool), without the process round trip.
	Nanos int64 `json:"ns"`
}

// Latency is Nanos as a duration.
func (r *Response) Latency() time.Duration { return time.Duration(r.Nanos) }

// Process is a running Invoke harness. It serves one Invoke at a time.
type Process struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
	waited  bool
	waitErr error
}

// ErrExited is wrapped by the error Invoke returns when the harness process
// is gone: a tool crashed it (os.Exit, a fatal runtime error) or it could not
// start its toolkit. Start another Process to go on.
var ErrExited = errors.New("the harness process exited")

// Start runs an Invoke harness. The tools' output (and the harness's own
// errors) go to stderr. Cancelling ctx kills the process.
func (h *Harness) Start(ctx context.Context, stderr io.Writer) (*Process, error) {
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Stderr = stderr
	// A tool may leave a child process holding stderr open: do not wait
	// for it forever.
	cmd.WaitDelay = 2 * time.Second
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the harness: %w", err)
	}
	return &Process{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

// Invoke sends one request and returns its response. An error wrapping
// ErrExited means the process is gone.
func (p *Process) Invoke(req Request) (*Response, error) {
	if p.waited {
		return nil, p.exitError(nil)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding the request: %w", err)
	}
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return nil, p.exitError(err)
	}
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return nil, p.exitError(err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("the harness answered something other than JSON (%w): %.200q", err, line)
	}
	return &resp, nil
}

// exitError waits for the process and says how it ended.
func (p *Process) exitError(ioErr error) error {
	p.wait()
	switch {
	case p.waitErr != nil:
		return fmt.Errorf("%w: %v", ErrExited, p.waitErr)
	case ioErr != nil:
		return fmt.Errorf("%w: %v", ErrExited, ioErr)
	}
	return ErrExited
}

func (p *Process) wait() {
	if !p.waited {
		p.in.Close()
		p.waitErr = p.cmd.Wait()
		p.waited = true
	}
}

// Close ends the harness (it exits when its stdin closes) and waits for it.
func (p *Process) Close() error {
	p.wait()
	return p.waitErr
}
