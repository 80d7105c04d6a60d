// Command report runs the side-by-side benchmarks of module bench and prints
// the performance tables of atp-go's README from their output: the median of
// each figure over the runs, and ratios to atp-go measured in the same run.
//
//	cd bench && go run ./cmd/report                  # runs go test -bench, 5 runs
//	go run ./cmd/report -in out.txt                  # tables from a saved run
//	go run ./cmd/report -count 3 -benchtime 500ms    # shorter
//
// The raw `go test` output is written to stderr as it comes, so a run can be
// kept (2>out.txt) and checked.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	in := flag.String("in", "", "read `go test -bench` output from this file instead of running the benchmarks")
	count := flag.Int("count", 5, "runs of each benchmark (go test -count)")
	benchtime := flag.String("benchtime", "1s", "go test -benchtime")
	flag.Parse()

	var out []byte
	var err error
	if *in != "" {
		out, err = os.ReadFile(*in)
	} else {
		out, err = run(*count, *benchtime)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	res := parse(bytes.NewReader(out))
	if len(res) == 0 {
		fmt.Fprintln(os.Stderr, "report: no benchmark results in the output")
		os.Exit(1)
	}
	if err := write(os.Stdout, res); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// run runs the benchmarks of the package in the current directory, copying
// their output to stderr as it comes.
func run(count int, benchtime string) ([]byte, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchmem",
		"-count", strconv.Itoa(count), "-benchtime", benchtime, ".")
	var buf bytes.Buffer
	cmd.Stdout = io.MultiWriter(&buf, os.Stderr)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test -bench (run from the bench directory): %w", err)
	}
	return buf.Bytes(), nil
}

// results maps a benchmark name (without the -GOMAXPROCS suffix) to each
// unit's values, one per run.
type results map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

func parse(r io.Reader) results {
	res := results{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res
}

// median of name's unit, and whether there is one.
func (r results) median(name, unit string) (float64, bool) {
	vs := slices.Clone(r[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

// runs is how many results name has.
func (r results) runs(name string) int { return len(r[name]["ns/op"]) }

func (r results) cell(name, unit string, format func(float64) string) string {
	v, ok := r.median(name, unit)
	if !ok {
		return "–"
	}
	return format(v)
}

// ratio is name's median over base's, as "1.23x".
func (r results) ratio(name, base, unit string) string {
	a, ok1 := r.median(name, unit)
	b, ok2 := r.median(base, unit)
	if !ok1 || !ok2 || b == 0 {
		return "–"
	}
	return fmtRatio(a / b)
}

func fmtRatio(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0fx", x)
	case x >= 10:
		return fmt.Sprintf("%.1fx", x)
	}
	return fmt.Sprintf("%.2fx", x)
}

func fmtTime(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e4:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.2f µs", ns/1e3)
}

func fmtBytes(b float64) string {
	switch {
	case b >= 1e6:
		return fmt.Sprintf("%.1f MB", b/1e6)
	case b >= 1e4:
		return fmt.Sprintf("%.1f KB", b/1e3)
	}
	return fmt.Sprintf("%.0f B", b)
}

func fmtCount(n float64) string { return strconv.FormatFloat(n, 'f', 0, 64) }

func fmtRate(n float64) string { return fmt.Sprintf("%.0fk", n/1e3) }

func fmtMicros(us float64) string { return fmt.Sprintf("%.1f µs", us) }

type row struct{ label, name string }

func write(w io.Writer, r results) error {
	var b strings.Builder
	runs := 0
	for name := range r {
		runs = max(runs, r.runs(name))
	}
	fmt.Fprintf(&b, "Medians of %d runs in one `go test -bench` invocation (module bench).\n\n", runs)

	b.WriteString("#### Params decode + validate (get_forecast's five-field input)\n\n")
	b.WriteString("| path | time/op | B/op | allocs/op | time vs atp-go |\n| --- | --- | --- | --- | --- |\n")
	for _, x := range []row{
		{"atp-go generated decoder", "atp"},
		{"`encoding/json`, no checks", "encoding_json"},
		{"go-sdk `AddTool[In, Out]` handler", "gosdk_typed"},
		{"mcp-go `BindArguments`, no checks", "mcpgo_bind"},
		{"mcp-go with `WithInputSchemaValidation`", "mcpgo_bind_validate"},
	} {
		n := "BenchmarkDecode/" + x.name
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", x.label, r.cell(n, "ns/op", fmtTime), r.cell(n, "B/op", fmtBytes),
			r.cell(n, "allocs/op", fmtCount), r.ratio(n, "BenchmarkDecode/atp", "ns/op"))
	}

	b.WriteString("\n#### One MCP tools/call, streamable HTTP (stateless, JSON responses)\n\n")
	b.WriteString("| server | server side: time / B / allocs | vs atp-go (time, B, allocs) | end to end: time / B / allocs | vs atp-go (time, B, allocs) |\n| --- | --- | --- | --- | --- |\n")
	for _, x := range []row{
		{"atp-go `mcp.Server`", "atp"},
		{"go-sdk, typed tool", "gosdk_typed"},
		{"mcp-go, typed tool + validation", "mcpgo_typed_validate"},
	} {
		var cells []string
		for _, side := range []string{"server", "e2e"} {
			n := "BenchmarkMCPCall/" + x.name + "/" + side
			base := "BenchmarkMCPCall/atp/" + side
			cells = append(cells,
				r.cell(n, "ns/op", fmtTime)+" / "+r.cell(n, "B/op", fmtBytes)+" / "+r.cell(n, "allocs/op", fmtCount),
				r.ratio(n, base, "ns/op")+", "+r.ratio(n, base, "B/op")+", "+r.ratio(n, base, "allocs/op"))
		}
		fmt.Fprintf(&b, "| %s | %s |\n", x.label, strings.Join(cells, " | "))
	}

	b.WriteString("\n#### Registering tools (a server with N copies of get_forecast)\n\n")
	b.WriteString("| | N=1: time / B / allocs | N=100: time / B / allocs | N=100 time vs atp-go `mcp.NewServer` |\n| --- | --- | --- | --- |\n")
	for _, x := range []row{
		{"atp-go `runtime.Toolkit.Add`", "atp_toolkit"},
		{"atp-go `NewToolkit` + `Add` + `mcp.NewServer`", "atp_mcp"},
		{"go-sdk `NewServer` + `AddTool[In, Out]`", "gosdk_typed"},
		{"mcp-go `NewMCPServer` + `AddTool` (validation on)", "mcpgo_typed_validate"},
	} {
		var cells []string
		for _, n := range []string{"1", "100"} {
			name := "BenchmarkRegister/tools=" + n + "/" + x.name
			cells = append(cells, r.cell(name, "ns/op", fmtTime)+" / "+r.cell(name, "B/op", fmtBytes)+" / "+r.cell(name, "allocs/op", fmtCount))
		}
		cells = append(cells, r.ratio("BenchmarkRegister/tools=100/"+x.name, "BenchmarkRegister/tools=100/atp_mcp", "ns/op"))
		fmt.Fprintf(&b, "| %s | %s |\n", x.label, strings.Join(cells, " | "))
	}

	b.WriteString("\n#### ATP calls beside a raw WebSocket echo\n\n")
	b.WriteString("| | p50, one call at a time | vs echo | calls/s, 64 in flight | of echo's |\n| --- | --- | --- | --- | --- |\n")
	for _, x := range []struct{ label, bench, path string }{
		{"served by a toolkit (`runtime.Serve`)", "BenchmarkServedCall", "served"},
		{"routed through `atp serve`", "BenchmarkRoutedCall", "routed"},
	} {
		p50, echoP50 := x.bench+"/"+x.path+"/single", x.bench+"/echo/single"
		rate, echoRate := x.bench+"/"+x.path+"/inflight64", x.bench+"/echo/inflight64"
		share := "–"
		if a, ok := r.median(rate, "calls/s"); ok {
			if e, ok := r.median(echoRate, "calls/s"); ok && e > 0 {
				share = fmt.Sprintf("%.0f%%", 100*a/e)
			}
		}
		fmt.Fprintf(&b, "| %s | %s (echo %s) | %s | %s (echo %s) | %s |\n", x.label,
			r.cell(p50, "p50-µs", fmtMicros), r.cell(echoP50, "p50-µs", fmtMicros), r.ratio(p50, echoP50, "p50-µs"),
			r.cell(rate, "calls/s", fmtRate), r.cell(echoRate, "calls/s", fmtRate), share)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
