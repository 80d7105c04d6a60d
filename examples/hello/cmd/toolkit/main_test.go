package main

import (
	"strings"
	"testing"

	"github.com/atpgo/atp/runtime"
)

func TestConfigFromEnv(t *testing.T) {
	for _, c := range []struct {
		env       map[string]string
		transport runtime.Transport
		wantErr   []string
	}{
		{map[string]string{"ATP_URL": "http://a", "ATP_API_KEY": "k"}, "", nil},
		{map[string]string{"ATP_URL": "http://a", "ATP_API_KEY": "k", "ATP_TRANSPORT": "http"}, runtime.TransportHTTP, nil},
		{map[string]string{"PLATOS_URL": "https://p/?entity=hello", "PLATOS_SECRET": "s"}, runtime.TransportPlatools, nil},
		{map[string]string{"PLATOS_URL": "https://p"}, "", []string{"PLATOS_SECRET is not set"}},
		{map[string]string{"PLATOS_SECRET": "s"}, "", []string{"PLATOS_URL is not set"}},
		{map[string]string{"ATP_API_KEY": "k"}, "", []string{"ATP_URL is not set"}},
		{map[string]string{}, "", []string{"ATP_URL is not set", "ATP_API_KEY is not set", "PLATOS_URL and PLATOS_SECRET"}},
		{map[string]string{"ATP_URL": "http://a", "PLATOS_SECRET": "s"}, "", []string{"both PLATOS_URL/PLATOS_SECRET and ATP_URL/ATP_API_KEY are set"}},
	} {
		cfg, err := configFromEnv(func(k string) string { return c.env[k] })
		if len(c.wantErr) == 0 {
			if err != nil || cfg.Transport != c.transport {
				t.Errorf("%v: %+v, %v; want transport %q", c.env, cfg, err, c.transport)
			}
			continue
		}
		for _, w := range c.wantErr {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v; want %q", c.env, err, w)
			}
		}
	}
}
