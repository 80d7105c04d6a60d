// Package interop holds the tests that check atp-go against other
// implementations: the official MCP Go SDK and the MCP TypeScript SDK as
// clients of package mcp, a real OAuth2 authorization server
// (go-oauth2/oauth2) behind the server's broker, and a general JSON Schema
// validator (santhosh-tekuri/jsonschema) as the oracle of the generated
// decoders and the provider schemas.
//
// It is a module of its own so that those libraries, which only tests
// need, stay out of the dependency graph (and go.sum) of projects that
// import atp-go. Run its tests from this directory: go test ./...
package interop
