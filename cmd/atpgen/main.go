// Command atpgen generates ATP tool registration, JSON Schemas and params
// decoders from Go functions marked //atp:tool.
//
//	//go:generate go tool atpgen
//
// Run atpgen -h for the flags.
package main

import (
	"os"

	"github.com/atpgo/atp/internal/atpgen"
)

func main() {
	os.Exit(atpgen.Main(os.Args[1:], "", os.Stdout, os.Stderr))
}
