// Package tools has a tool for each doctor check that trips it and one that
// does not. doctor_test.go lists, by line, what each tool should report.
package tools

import (
	"context"
	"encoding/json"
)

// Frobnicate turns the knobs of the widget and returns how many it turned.
//
// Parameters:
//   - knob: the name of the knob to turn, e.g. "volume"
//
//atp:tool idempotent
func Frobnicate(knob string) int { return len(knob) }

//atp:tool
func Undocumented(knob string) int { return len(knob) }

// Pings.
//
// Parameters:
//   - host: the host name to ping, e.g. "example.com"
//
//atp:tool readonly
func Ping(host string) bool { return host != "" }

// Lookup finds a record by its identifier and returns it.
//
// Parameters:
//   - id: the id
//
//atp:tool readonly
func Lookup(id string, verbose bool) string { return id }

// DeleteUser deletes a user account and everything it owns.
//
// Parameters:
//   - id: the account id of the user, e.g. "u_123"
//
//atp:tool
func DeleteUser(ctx context.Context, id string) error { return nil }

// RemoveUser removes a user account and everything it owns.
//
// Parameters:
//   - id: the account id of the user, e.g. "u_123"
//
//atp:tool destructive
func RemoveUser(ctx context.Context, id string) error { return nil }

// ListArchive lists the archived tickets, newest first.
//
//atp:tool readonly
func ListArchive(ctx context.Context) ([]string, error) { return nil, nil }

// DropdownOptions returns the options of the status dropdown.
//
//atp:tool idempotent
func DropdownOptions(ctx context.Context) ([]string, error) { return nil, nil }

// BigInput has one field too many.
type BigInput struct {
	// The first field of eleven.
	A string `json:"a"`
	// The second field of eleven.
	B string `json:"b"`
	// The third field of eleven.
	C string `json:"c"`
	// The fourth field of eleven.
	D string `json:"d"`
	// The fifth field of eleven.
	E string `json:"e"`
	// The sixth field of eleven.
	F string `json:"f"`
	// The seventh field of eleven.
	G string `json:"g"`
	// The eighth field of eleven.
	H string `json:"h"`
	// The ninth field of eleven.
	I string `json:"i"`
	// The tenth field of eleven.
	J string `json:"j"`
	// The last field of eleven.
	K string `json:"k,omitempty"`
}

// Big takes eleven parameters, one more than doctor accepts.
//
//atp:tool readonly
func Big(in BigInput) string { return in.A }

// TenInput has as many fields as doctor accepts.
type TenInput struct {
	// The first field of ten.
	A string `json:"a"`
	// The second field of ten.
	B string `json:"b"`
	// The third field of ten.
	C string `json:"c"`
	// The fourth field of ten.
	D string `json:"d"`
	// The fifth field of ten.
	E string `json:"e"`
	// The sixth field of ten.
	F string `json:"f"`
	// The seventh field of ten.
	G string `json:"g"`
	// The eighth field of ten.
	H string `json:"h"`
	// The ninth field of ten.
	I string `json:"i"`
	// The tenth field of ten.
	J string `json:"j"`
}

// Ten takes ten parameters, as many as doctor accepts.
//
//atp:tool readonly
func Ten(in TenInput) string { return in.A }

// Person names a person.
type Person struct {
	// The person's given name, e.g. "Ada".
	FirstName string `json:"first-name"`
	// The person's family name, e.g. "Lovelace".
	LastName string `json:"last_name" jsonschema:"minLength=1"`
	Nickname string `json:"nickname,omitempty"`
	// The person's home address.
	Home *Address `json:"home,omitempty"`
}

// Address is a postal address.
type Address struct {
	// The city, e.g. "Paris".
	City string `json:"city"`
	Zip  string `json:"zip,omitempty"`
}

// Greet greets a person by name, in a friendly way.
//
//atp:tool readonly
func Greet(p Person) string { return "Hello, " + p.FirstName }

// Welcome welcomes a person to the team, warmly.
//
//atp:tool readonly
func Welcome(p *Person) string { return "Welcome, " + p.FirstName }

// Labels are a ticket's labels; one of them must be "triage".
//
//atp:schema {"type":"array","items":{"type":"string"},"contains":{"const":"triage"}}
type Labels []string

func (l *Labels) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, (*[]string)(l)) }

// Headers are extra HTTP headers, each named x-something.
//
//atp:schema {"type":"object","patternProperties":{"^x-":{"type":"string"}}}
type Headers map[string]string

func (h *Headers) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, (*map[string]string)(h)) }

// Money is an amount in a currency, described by a shared remote schema.
//
//atp:schema {"$ref":"https://schemas.example.com/money.json"}
type Money struct{ Amount, Currency string }

func (m *Money) UnmarshalJSON(b []byte) error { return nil }

// Ticket is a support ticket to file.
type Ticket struct {
	// The ticket's title, one line.
	Title string `json:"title"`
	// The ticket's labels, "triage" among them.
	Labels Labels `json:"labels"`
}

// FileTicket files a support ticket and returns its id.
//
//atp:tool
func FileTicket(t Ticket) string { return t.Title }

// Request is an HTTP request to send.
type Request struct {
	// The URL to send the request to.
	URL string `json:"url"`
	// Extra headers to send with the request.
	Headers Headers `json:"headers,omitempty"`
}

// Fetch sends an HTTP GET request and returns the response body.
//
//atp:tool readonly
func Fetch(r Request) string { return r.URL }

// Charge is a payment to take.
type Charge struct {
	// The amount to charge the customer.
	Amount Money `json:"amount"`
}

// TakePayment charges a customer's card and returns the payment id.
//
//atp:tool
func TakePayment(c Charge) string { return "" }

// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 00
// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 01
// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 02
// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 03
// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 04
// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 05
// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 06
// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 07
// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 08
// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 09
// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 10
// Archives nothing; this sentence is here to make the description long enough for OpenAI Chat. 11
//
//atp:tool readonly name=long_description
func LongDescription() string { return "" }
