// Command quickstart shows the main job on this machine, with nothing to set
// up: the hello example's generated tools, their schemas, and calls through
// the runtime, good and bad, printed step by step.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/atpgo/atp/examples/hello"
	"github.com/atpgo/atp/runtime"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	tk := runtime.NewToolkit("hello")
	if err := tk.Add(hello.ATPTools()...); err != nil {
		return err
	}
	fmt.Fprintln(w, "1. The toolkit's tools, as atpgen generated them from examples/hello/hello.go:")
	for _, t := range tk.Tools() {
		fmt.Fprintf(w, "\n   %s: %s\n   input schema: %s\n", t.Name, t.Description, t.InputSchema)
	}
	fmt.Fprintln(w, "\n2. Calls, the way an agent would make them:")
	calls := []struct{ tool, params string }{
		{"greet", `{"name":"Ada","times":2}`},
		{"add", `{"a":1.5,"b":2}`},
		{"greet", `{"name":"Ada","times":"two","extra":true}`},
		{"greet", `{"times":9}`},
	}
	for _, c := range calls {
		res, err := tk.Invoke(ctx, c.tool, []byte(c.params))
		if err != nil {
			fmt.Fprintf(w, "   %s %s\n     -> error: %v\n", c.tool, c.params, err)
			continue
		}
		fmt.Fprintf(w, "   %s %s\n     -> %s\n", c.tool, c.params, res)
	}
	return nil
}
