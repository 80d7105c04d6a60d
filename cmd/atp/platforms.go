package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

var platformsCommand = &command{
	name:    "platforms",
	summary: "add, list and remove OAuth platforms (where end users' tokens come from)",
	run:     runPlatforms,
}

const platformsSynopsis = `atp platforms add --id ID --client-id ID [--client-secret S | --client-secret-env VAR | --client-secret-file F]
                        --auth-url URL --token-url URL [--scopes a,b] [--name N] [--no-pkce]
                        [--userinfo-url URL] [--auth-param k=v]... [--auth-style header|params]
                        [--secret-key-file F] [--db PATH] [--json]
       atp platforms list [--json] [--db PATH]
       atp platforms remove ID [--db PATH] [--json]`

func runPlatforms(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand: expected add, list or remove\nUsage: %s", platformsSynopsis)
	}
	switch args[0] {
	case "add":
		return platformsAdd(ctx, e, args[1:])
	case "list":
		return platformsList(ctx, e, args[1:])
	case "remove":
		return platformsRemove(ctx, e, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintf(e.stderr, "Usage: %s\n", platformsSynopsis)
		return nil
	}
	return usagef("unknown subcommand %q: expected add, list or remove", args[0])
}

// keyValues is a repeatable k=v flag.
type keyValues map[string]string

func (kv keyValues) String() string { return fmt.Sprint(map[string]string(kv)) }

func (kv keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("expected key=value, got %q", s)
	}
	kv[k] = v
	return nil
}

// flagNames maps a platform's field names (in store.Platform.Validate's
// errors) to the flags that set them.
var flagNames = map[string]string{
	"id": "--id", "client_id": "--client-id", "client_secret": "--client-secret", "auth_url": "--auth-url",
	"token_url": "--token-url", "userinfo_url": "--userinfo-url", "auth_params": "--auth-param", "auth_style": "--auth-style",
}

func platformsAdd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "platforms add", platformsSynopsis)
	id := fs.String("id", "", "platform id: what tools name in auth= / auth_provider (e.g. hubspot)")
	name := fs.String("name", "", "name shown to people (default: the id)")
	clientID := fs.String("client-id", "", "OAuth client id from the provider")
	secret := fs.String("client-secret", "", "OAuth client secret (visible to other local users in the process list: prefer the next two)")
	secretEnv := fs.String("client-secret-env", "", "read the client secret from this environment `variable`")
	secretFile := fs.String("client-secret-file", "", "read the client secret from this `file`")
	authURL := fs.String("auth-url", "", "the provider's authorization endpoint (https)")
	tokenURL := fs.String("token-url", "", "the provider's token endpoint (https)")
	scopes := fs.String("scopes", "", "comma-separated scopes to ask for")
	noPKCE := fs.Bool("no-pkce", false, "do not send a PKCE code challenge (only for providers that reject it)")
	userinfo := fs.String("userinfo-url", "", "optional: URL answering {\"email\"} for the user's access token")
	authStyle := fs.String("auth-style", "", "how the client authenticates to the token endpoint: header (HTTP Basic) or params (default: found out on first use)")
	params := keyValues{}
	fs.Var(params, "auth-param", "extra `key=value` query parameter of the authorization URL (repeatable), e.g. access_type=offline")
	keyFile := secretKeyFlag(fs)
	db := dbFlag(fs, e)
	asJSON := fs.Bool("json", false, "print the platform (never its secret) and its redirect path as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case *id == "":
		return usagef("--id is required")
	case *clientID == "":
		return usagef("--client-id is required")
	case *authURL == "":
		return usagef("--auth-url is required")
	case *tokenURL == "":
		return usagef("--token-url is required")
	}
	clientSecret, err := readClientSecret(e, *secret, *secretEnv, *secretFile)
	if err != nil {
		return err
	}
	p := store.Platform{
		ID: *id, Name: *name, ClientID: *clientID, ClientSecret: clientSecret, AuthURL: *authURL, TokenURL: *tokenURL,
		Scopes: splitList(*scopes), PKCE: !*noPKCE, UserinfoURL: *userinfo, AuthStyle: *authStyle,
	}
	if len(params) > 0 {
		p.AuthParams = params
	}
	if err := p.Validate(); err != nil {
		field, rest, _ := strings.Cut(err.Error(), ":")
		if f, ok := flagNames[strings.Split(field, "[")[0]]; ok {
			return usagef("%s:%s", f, rest)
		}
		return usagef("%v", err)
	}
	path, err := resolveDB(e, *db)
	if err != nil {
		return err
	}
	key, err := secretKey(e, *keyFile, path, true)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := st.Vault(ctx, key)
	if errors.Is(err, store.ErrWrongSecretKey) {
		return server.WrongSecretKeyError(ctx, st, path)
	}
	if err != nil {
		return err
	}
	_, err = v.Platform(ctx, p.ID)
	verb := "Updated"
	if errors.Is(err, store.ErrPlatformNotFound) {
		verb = "Added"
	} else if err != nil && !errors.Is(err, store.ErrWrongSecretKey) {
		verb = "Replaced" // its stored secret does not open: overwrite it
	}
	if _, err := v.PutPlatform(ctx, p); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e, struct {
			Action       string       `json:"action"`
			Platform     platformJSON `json:"platform"`
			RedirectPath string       `json:"redirect_path"`
		}{strings.ToLower(verb), platformJSON{ID: p.ID, Name: p.DisplayName(), ClientID: p.ClientID, AuthURL: p.AuthURL, TokenURL: p.TokenURL,
			Scopes: nonNil(p.Scopes), PKCE: p.PKCE, UserinfoURL: p.UserinfoURL, AuthParams: p.AuthParams, AuthStyle: p.AuthStyle},
			"/api/v1/oauth/callback/" + p.ID + "/"})
	}
	pkce := "on"
	if !p.PKCE {
		pkce = "off"
	}
	fmt.Fprintf(e.stdout, "%s OAuth platform %s (PKCE %s). Register this redirect URI with the provider:\n\n  <public URL of atp serve>%s\n\n"+
		"A running server picks the change up at its next use of the platform.\n", verb, p.ID, pkce, "/api/v1/oauth/callback/"+p.ID+"/")
	return nil
}

// readClientSecret takes the secret from exactly one of its three flags, or
// none (a public client, allowed with PKCE).
func readClientSecret(e *env, value, envVar, file string) (string, error) {
	given := 0
	for _, s := range []string{value, envVar, file} {
		if s != "" {
			given++
		}
	}
	switch {
	case given > 1:
		return "", usagef("give the client secret once: --client-secret, --client-secret-env or --client-secret-file")
	case envVar != "":
		s := e.getenv(envVar)
		if s == "" {
			return "", fmt.Errorf("--client-secret-env: environment variable %s is not set or empty", envVar)
		}
		return s, nil
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--client-secret-file: %w", err)
		}
		return strings.TrimSpace(string(data)), nil
	}
	return value, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// platformJSON is a platform in --json output: never its secret.
type platformJSON struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	ClientID    string            `json:"client_id"`
	AuthURL     string            `json:"auth_url"`
	TokenURL    string            `json:"token_url"`
	Scopes      []string          `json:"scopes"`
	PKCE        bool              `json:"pkce"`
	UserinfoURL string            `json:"userinfo_url,omitempty"`
	AuthParams  map[string]string `json:"auth_params,omitempty"`
	AuthStyle   string            `json:"auth_style,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

func platformsList(ctx context.Context, e *env, args []string) error {
	st, asJSON, err := openForList(ctx, e, "platforms list", "atp platforms list [--json] [--db PATH]", "print the platforms as a JSON array", args)
	if err != nil {
		return err
	}
	defer st.Close()
	ps, err := st.Platforms(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]platformJSON, 0, len(ps))
		for _, p := range ps {
			out = append(out, platformJSON{ID: p.ID, Name: p.DisplayName(), ClientID: p.ClientID, AuthURL: p.AuthURL, TokenURL: p.TokenURL,
				Scopes: nonNil(p.Scopes), PKCE: p.PKCE, UserinfoURL: p.UserinfoURL, AuthParams: p.AuthParams, AuthStyle: p.AuthStyle,
				CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt})
		}
		return writeJSON(e, out)
	}
	if len(ps) == 0 {
		fmt.Fprintln(e.stdout, "No OAuth platforms. Add one with: atp platforms add --id ID --client-id ... --auth-url ... --token-url ...")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCLIENT ID\tSCOPES\tPKCE\tTOKEN URL\tUPDATED")
	for _, p := range ps {
		pkce := "on"
		if !p.PKCE {
			pkce = "off"
		}
		scopes := strings.Join(p.Scopes, ",")
		if scopes == "" {
			scopes = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.DisplayName(), p.ClientID, scopes, pkce, p.TokenURL, p.UpdatedAt.Format(time.DateTime))
	}
	return tw.Flush()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func platformsRemove(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "platforms remove", "atp platforms remove ID [--db PATH] [--json]")
	db := dbFlag(fs, e)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("expected exactly one platform id (see atp platforms list), got %d arguments", fs.NArg())
	}
	st, err := openStore(ctx, e, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.DeletePlatform(ctx, fs.Arg(0))
	if errors.Is(err, store.ErrPlatformNotFound) {
		return fmt.Errorf("no OAuth platform %q (see atp platforms list)", fs.Arg(0))
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e, struct {
			ID                 string `json:"id"`
			Removed            bool   `json:"removed"`
			ConnectionsRemoved int    `json:"connections_removed"`
		}{fs.Arg(0), true, n})
	}
	fmt.Fprintf(e.stdout, "Removed OAuth platform %s and the %d user connection(s) made through it.\n", fs.Arg(0), n)
	return nil
}

// ---- the secret key, for platforms add and serve ----

func secretKeyFlag(fs *flag.FlagSet) *string {
	return fs.String("secret-key-file", "", "`file` holding the 32-byte key (base64) that encrypts tokens and client secrets at rest (default $"+server.SecretKeyEnv+")")
}

// secretKey returns the key that seals secrets: --secret-key-file, else
// $ATP_SECRET_KEY, else, when devFile allows it, the key `atp serve --dev`
// keeps beside the database. Without any it fails with
// server.ErrNoSecretKey.
func secretKey(e *env, file, dbPath string, devFile bool) ([]byte, error) {
	if file != "" {
		return server.ReadSecretKeyFile(file)
	}
	if text := e.getenv(server.SecretKeyEnv); text != "" {
		key, err := server.ParseSecretKey(text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", server.SecretKeyEnv, err)
		}
		return key, nil
	}
	if devFile && !store.IsPostgres(dbPath) {
		key, err := server.ReadSecretKeyFile(server.DevSecretKeyPath(dbPath))
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return key, err
		}
	}
	return nil, server.ErrNoSecretKey
}

// oauthFlags are atp serve's OAuth broker flags.
type oauthFlags struct {
	keyFile, platforms, publicURL *string
}

func addOAuthFlags(fs *flag.FlagSet) *oauthFlags {
	return &oauthFlags{
		keyFile:   secretKeyFlag(fs),
		platforms: fs.String("platforms", "", "JSON `file` of OAuth platforms (see server.PlatformsFile), besides those of atp platforms add"),
		publicURL: fs.String("public-url", "", "base `URL` browsers and OAuth providers reach this server at; redirect URIs are URL/api/v1/oauth/callback/<platform>/ (default http://<addr>)"),
	}
}

// apply sets cfg's OAuth fields. Without a secret key the server starts
// with its OAuth broker off (its endpoints say how to give a key), unless
// there are OAuth platforms to serve: --platforms here, stored ones in
// server.New. The server never keeps tokens it cannot protect.
func (f *oauthFlags) apply(e *env, cfg *server.Config) error {
	key, err := secretKey(e, *f.keyFile, cfg.DBPath, false)
	switch {
	case errors.Is(err, server.ErrNoSecretKey) && cfg.Dev:
		// The server generates or reuses the dev key beside the database.
	case errors.Is(err, server.ErrNoSecretKey) && *f.platforms != "":
		return fmt.Errorf("--platforms: OAuth platforms need a secret key: %w", err)
	case errors.Is(err, server.ErrNoSecretKey):
	case err != nil:
		return err
	}
	cfg.SecretKey = key
	if *f.platforms != "" {
		if cfg.Platforms, err = server.LoadPlatformsFile(*f.platforms, e.getenv); err != nil {
			return err
		}
	}
	cfg.PublicURL = *f.publicURL
	return nil
}
