package server

import (
	"encoding/json"

	"github.com/atpgo/atp/provider"
)

// formatTools returns a toolkit's tools as a JSON array in the provider's
// own tool format (docs/protocol.md §2.3). An unknown provider is an error that lists
// the supported ones.
func formatTools(name string, tools []*toolEntry) (json.RawMessage, error) {
	list := make([]provider.Tool, len(tools))
	for i, t := range tools {
		var hints struct {
			ReadOnly    bool `json:"readOnlyHint"`
			Destructive bool `json:"destructiveHint"`
			Idempotent  bool `json:"idempotentHint"`
		}
		if len(t.Hints) > 0 {
			json.Unmarshal(t.Hints, &hints) // checked at registration
		}
		list[i] = provider.Tool{
			Name: t.Name, Description: t.Description,
			InputSchema: t.InputSchema, OutputSchema: t.OutputSchema,
			ReadOnly: hints.ReadOnly, Destructive: hints.Destructive, Idempotent: hints.Idempotent,
		}
	}
	return provider.FormatTools(name, list)
}
