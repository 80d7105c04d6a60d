// Package crm is a HubSpot-style toolkit: struct inputs, enums, and tools
// that act with the end user's own OAuth token.
package crm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/atpgo/atp/runtime"
)

//go:generate go tool atpgen

// Client calls the CRM's REST API. Its methods are the toolkit's tools; the
// client carries what they share.
type Client struct {
	// BaseURL is the API's root, e.g. https://api.hubapi.com.
	BaseURL string
	// HTTP is the client used for API calls (http.DefaultClient when nil).
	HTTP *http.Client
}

// Industry is the industry a company works in.
type Industry string

const (
	// Software, SaaS and IT services.
	IndustrySoftware Industry = "software"
	// Banks, insurers and other financial services.
	IndustryFinance Industry = "finance"
	// Hospitals, clinics and life sciences.
	IndustryHealthcare Industry = "healthcare"
	// Shops and e-commerce.
	IndustryRetail Industry = "retail"
)

// Address is a postal address.
type Address struct {
	// Street and number.
	Street string `json:"street,omitempty"`
	// City name.
	City string `json:"city"`
	// ISO 3166-1 alpha-2 country code, e.g. "FR".
	Country string `json:"country" jsonschema:"pattern=^[A-Z]{2}$"`
}

// CompanyInput describes a company to create.
type CompanyInput struct {
	// The company's legal or trading name.
	Name string `json:"name" jsonschema:"minLength=1,maxLength=200"`
	// The company's web domain, e.g. "example.com".
	Domain string `json:"domain,omitempty" jsonschema:"format=hostname"`
	// The industry the company works in.
	Industry Industry `json:"industry,omitempty"`
	// Number of employees.
	Employees int `json:"employees,omitempty" jsonschema:"minimum=0"`
	// Free-form labels.
	Tags []string `json:"tags,omitempty" jsonschema:"maxItems=10"`
	// Head office address.
	Address *Address `json:"address,omitempty"`
}

// Company is a company record in the CRM.
type Company struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Domain    string    `json:"domain,omitempty"`
	Industry  Industry  `json:"industry,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ContactQuery selects contacts.
type ContactQuery struct {
	// Only contacts of this company (by company id).
	CompanyID string `json:"company_id,omitempty"`
	// Maximum number of contacts to return.
	Limit int `json:"limit,omitempty" jsonschema:"minimum=1,maximum=100,default=20"`
	// Only contacts changed since this time.
	Since *time.Time `json:"since,omitempty"`
}

// Contact is a person in the CRM.
type Contact struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	CompanyID string `json:"company_id,omitempty"`
}

// CreateCompany creates a company record in the CRM and returns it.
//
//atp:tool auth=hubspot timeout=30s
func (c *Client) CreateCompany(ctx context.Context, token runtime.AuthToken, in CompanyInput) (*Company, error) {
	var out Company
	if err := c.do(ctx, token, http.MethodPost, "/crm/v3/objects/companies", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetContacts lists the CRM's contacts, newest first.
//
//atp:tool auth=hubspot readonly idempotent timeout=30s
func (c *Client) GetContacts(ctx context.Context, token runtime.AuthToken, q ContactQuery) ([]Contact, error) {
	v := url.Values{}
	if q.CompanyID != "" {
		v.Set("company_id", q.CompanyID)
	}
	v.Set("limit", strconv.Itoa(q.Limit))
	if q.Since != nil {
		v.Set("since", q.Since.Format(time.RFC3339))
	}
	var out struct {
		Results []Contact `json:"results"`
	}
	if err := c.do(ctx, token, http.MethodGet, "/crm/v3/objects/contacts?"+v.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// do sends one API request with the user's token and decodes the reply.
func (c *Client) do(ctx context.Context, token runtime.AuthToken, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+string(token))
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("crm API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("crm API: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("crm API: decode reply: %w", err)
	}
	return nil
}
