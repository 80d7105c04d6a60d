package runtime

// ProgressFunc receives a call's progress reports: done out of total units
// (total 0 when unknown) and an optional message.
type ProgressFunc func(done, total float64, message string)

// WithProgress passes the call's progress reports (Call.Progress) to f. A
// transport that can carry progress to its client sets it; f must not block
// for long, as the tool waits for it.
func WithProgress(f ProgressFunc) InvokeOption {
	return invokeOption(func(c *invokeConfig) { c.call.progress = f })
}

// Progress reports how far the call has got: done out of total units (pass
// total 0 when it is unknown) and an optional message for the person
// watching, e.g. c.Progress(3, 10, "fetched 3 of 10 pages"). done should
// grow from one report to the next.
//
// Over MCP a report becomes a notifications/progress message when the host
// asked for progress (it sent a progressToken with the call). The ATP
// transports (WebSocket, HTTP inbox), the net/http handler and
// Toolkit.Invoke have no equivalent, and there, as over MCP without a
// progressToken, Progress does nothing. It is safe to call on a nil Call
// and from any goroutine while the call runs; reports made after the tool
// returned are dropped.
func (c *Call) Progress(done, total float64, message string) {
	if c == nil || c.progress == nil {
		return
	}
	c.progress(done, total, message)
}
