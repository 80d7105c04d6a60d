package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/atpgo/atp/server/store"
)

// PlatformsFile is the format of `atp serve --platforms FILE`:
//
//	{"platforms": [{
//	  "id": "hubspot", "name": "HubSpot",
//	  "client_id": "...", "client_secret_env": "HUBSPOT_CLIENT_SECRET",
//	  "auth_url": "https://app.hubspot.com/oauth/authorize",
//	  "token_url": "https://api.hubapi.com/oauth/v1/token",
//	  "scopes": ["crm.objects.companies.write"],
//	  "pkce": true, "userinfo_url": "", "auth_params": {}, "auth_style": ""
//	}]}
//
// The client secret is client_secret_env (the name of an environment
// variable holding it, so that the file holds no secret) or client_secret.
// pkce defaults to true. Unknown fields are errors, so that a typo is not
// silently a default.
type PlatformsFile struct {
	Platforms []PlatformConfig `json:"platforms"`
}

// PlatformConfig is one platform of a PlatformsFile.
type PlatformConfig struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	ClientID        string            `json:"client_id"`
	ClientSecret    string            `json:"client_secret"`
	ClientSecretEnv string            `json:"client_secret_env"`
	AuthURL         string            `json:"auth_url"`
	TokenURL        string            `json:"token_url"`
	Scopes          []string          `json:"scopes"`
	PKCE            *bool             `json:"pkce"`
	UserinfoURL     string            `json:"userinfo_url"`
	AuthParams      map[string]string `json:"auth_params"`
	AuthStyle       string            `json:"auth_style"`
}

// LoadPlatformsFile reads a PlatformsFile; getenv resolves
// client_secret_env. Errors name the file and the field.
func LoadPlatformsFile(path string, getenv func(string) string) ([]store.Platform, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("platforms file: %w", err)
	}
	ps, err := ParsePlatforms(data, getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ps, nil
}

// ParsePlatforms parses the JSON of a PlatformsFile.
func ParsePlatforms(data []byte, getenv func(string) string) ([]store.Platform, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f PlatformsFile
	if err := dec.Decode(&f); err != nil {
		return nil, jsonError(err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: more than one value")
	}
	out := make([]store.Platform, 0, len(f.Platforms))
	seen := map[string]bool{}
	for i, pc := range f.Platforms {
		p, err := pc.platform(getenv)
		if err == nil {
			err = p.Validate()
		}
		if err != nil {
			return nil, fmt.Errorf("platforms[%d]: %w", i, err)
		}
		if seen[p.ID] {
			return nil, fmt.Errorf("platforms[%d]: id %q: configured twice", i, p.ID)
		}
		seen[p.ID] = true
		out = append(out, p)
	}
	return out, nil
}

func (pc *PlatformConfig) platform(getenv func(string) string) (store.Platform, error) {
	secret := pc.ClientSecret
	switch {
	case pc.ClientSecret != "" && pc.ClientSecretEnv != "":
		return store.Platform{}, errors.New("client_secret and client_secret_env: give one, not both")
	case pc.ClientSecretEnv != "":
		if secret = getenv(pc.ClientSecretEnv); secret == "" {
			return store.Platform{}, fmt.Errorf("client_secret_env: environment variable %s is not set or empty", pc.ClientSecretEnv)
		}
	}
	pkce := true
	if pc.PKCE != nil {
		pkce = *pc.PKCE
	}
	return store.Platform{
		ID: pc.ID, Name: pc.Name, ClientID: pc.ClientID, ClientSecret: secret,
		AuthURL: pc.AuthURL, TokenURL: pc.TokenURL, Scopes: pc.Scopes, PKCE: pkce,
		UserinfoURL: pc.UserinfoURL, AuthParams: pc.AuthParams, AuthStyle: pc.AuthStyle,
	}, nil
}
