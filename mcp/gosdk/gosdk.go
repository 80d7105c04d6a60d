// Package gosdk adds the tools of a runtime.Toolkit to a server of the
// official MCP Go SDK (github.com/modelcontextprotocol/go-sdk) that a
// program already runs:
//
//	srv := mcp.NewServer(&mcp.Implementation{Name: "app", Version: "1.0.0"}, nil)
//	stop, err := gosdk.AddTools(srv, tk, atpmcp.WithAuthTokenHeader("X-ATP-Auth-Token"))
//
// The tools keep the schemas, annotations, results and errors of package
// github.com/atpgo/atp/mcp (invalid params and tool failures as isError
// results, a string result as its text, structuredContent for objects),
// report progress through the session when the host sent a progressToken,
// and follow the toolkit: tools added to or removed from it are added to or
// removed from srv, which tells its sessions (notifications/tools/list_changed).
//
// It is a module of its own so that projects serving on mcp-go (as package
// mcp does) never download the go-sdk.
package gosdk

import (
	"context"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	atpmcp "github.com/atpgo/atp/mcp"
	"github.com/atpgo/atp/runtime"
)

// AddTools adds the tools of tk to srv and keeps them in step with tk until
// stop is called. The end user's token comes from the header named by
// atpmcp.WithAuthTokenHeader when srv is served over streamable HTTP, else
// from atpmcp.WithAuthToken. It returns an error for a nil server or
// toolkit, conflicting options, or a tool whose schemas MCP cannot take
// (then no tool is added).
func AddTools(srv *sdk.Server, tk *runtime.Toolkit, opts ...atpmcp.Option) (stop func(), err error) {
	if srv == nil {
		return nil, errors.New("gosdk: AddTools: server is nil")
	}
	c, err := atpmcp.NewCaller(tk, opts...)
	if err != nil {
		return nil, fmt.Errorf("gosdk: AddTools: %w", err)
	}
	stop, err = atpmcp.Follow(c,
		func(defs []atpmcp.Definition) (err error) {
			// The SDK panics on a schema it cannot take; that must not take
			// the process down.
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("the go-sdk refused a tool: %v", v)
				}
			}()
			for _, d := range defs {
				srv.AddTool(tool(d), handler(c, d.Name))
			}
			return nil
		},
		func(names []string) { srv.RemoveTools(names...) })
	if err != nil {
		return nil, fmt.Errorf("gosdk: AddTools: %w", err)
	}
	return stop, nil
}

// tool is d as the SDK announces it: raw schemas, every hint explicit.
func tool(d atpmcp.Definition) *sdk.Tool {
	destructive := d.Hints.Destructive
	t := &sdk.Tool{
		Name:        d.Name,
		Description: d.Description,
		InputSchema: d.InputSchema,
		Annotations: &sdk.ToolAnnotations{
			ReadOnlyHint:    d.Hints.ReadOnly,
			DestructiveHint: &destructive,
			IdempotentHint:  d.Hints.Idempotent,
		},
	}
	if len(d.OutputSchema) > 0 {
		t.OutputSchema = d.OutputSchema
	}
	return t
}

func handler(c *atpmcp.Caller, name string) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		creq := atpmcp.CallRequest{Name: name}
		if req.Params != nil {
			creq.Arguments = req.Params.Arguments
			if tok := req.Params.GetProgressToken(); tok != nil && req.Session != nil {
				creq.Progress = func(done, total float64, msg string) {
					// A lost report is no reason to fail the call.
					_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{
						ProgressToken: tok, Progress: done, Total: total, Message: msg,
					})
				}
			}
		}
		if h := c.AuthTokenHeader(); h != "" && req.Extra != nil && req.Extra.Header != nil {
			creq.AuthToken = c.AuthTokenFromHeader(req.Extra.Header.Get(h))
		}
		res, err := c.Call(ctx, creq)
		if err != nil {
			// The tool left the toolkit after the SDK looked it up.
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error()}
		}
		out := &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: res.Text}}, IsError: res.IsError}
		if res.StructuredContent != nil {
			out.StructuredContent = res.StructuredContent
		}
		return out, nil
	}
}
