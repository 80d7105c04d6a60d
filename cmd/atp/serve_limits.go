package main

import (
	"flag"

	"github.com/atpgo/atp/server"
)

// schemaLimitFlags are atp serve's flags for server.Config's schema limits.
type schemaLimitFlags struct {
	bytes, depth, enum, properties *int
}

func addSchemaLimitFlags(fs *flag.FlagSet) *schemaLimitFlags {
	return &schemaLimitFlags{
		bytes:      fs.Int("max-schema-bytes", 256<<10, "largest tool schema (input or output, compacted) register_tool accepts, in `bytes`"),
		depth:      fs.Int("max-schema-depth", 64, "deepest nesting of objects and arrays in a tool schema's JSON, in `levels`"),
		enum:       fs.Int("max-schema-enum", 1000, "most `values` one enum of a tool schema may list"),
		properties: fs.Int("max-schema-properties", 1000, "most properties (and required names) one object of a tool schema may have: a `count`"),
	}
}

// apply sets cfg's schema limits; each must be positive.
func (f *schemaLimitFlags) apply(cfg *server.Config) error {
	for _, l := range []struct {
		flag string
		v    int
		dst  *int
	}{
		{"--max-schema-bytes", *f.bytes, &cfg.MaxSchemaBytes},
		{"--max-schema-depth", *f.depth, &cfg.MaxSchemaDepth},
		{"--max-schema-enum", *f.enum, &cfg.MaxSchemaEnum},
		{"--max-schema-properties", *f.properties, &cfg.MaxSchemaProperties},
	} {
		if l.v <= 0 {
			return usagef("%s must be positive, got %d", l.flag, l.v)
		}
		*l.dst = l.v
	}
	return nil
}
