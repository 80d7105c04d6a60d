package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/atpgo/atp/server/store"
)

var keysCommand = &command{
	name:    "keys",
	summary: "create, list and revoke API keys",
	run:     runKeys,
}

const keysSynopsis = `atp keys create --kind toolkit|llm --name N [--owner O] [--toolkit T] [--json]
       atp keys list [--json]
       atp keys rotate ID [--name N] [--json]
       atp keys revoke ID [--json]`

func runKeys(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand: expected create, list, rotate or revoke\nUsage: %s", keysSynopsis)
	}
	switch args[0] {
	case "create":
		return keysCreate(ctx, e, args[1:])
	case "list":
		return keysList(ctx, e, args[1:])
	case "rotate":
		return keysRotate(ctx, e, args[1:])
	case "revoke":
		return keysRevoke(ctx, e, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintf(e.stderr, "Usage: %s\n", keysSynopsis)
		return nil
	}
	return usagef("unknown subcommand %q: expected create, list, rotate or revoke", args[0])
}

// keyJSON is a key in --json output. APIKey is set only by create.
type keyJSON struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Name      string     `json:"name"`
	Owner     string     `json:"owner"`
	Toolkit   string     `json:"toolkit,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	APIKey    string     `json:"api_key,omitempty"`
}

func toJSON(k store.Key) keyJSON {
	j := keyJSON{ID: k.ID, Kind: string(k.Kind), Name: k.Name, Owner: k.Owner, Toolkit: k.Toolkit, CreatedAt: k.CreatedAt}
	if k.Revoked() {
		t := k.RevokedAt
		j.RevokedAt = &t
	}
	return j
}

func openStore(ctx context.Context, e *env, dbFlag string) (*store.Store, error) {
	path, err := resolveDB(e, dbFlag)
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, path)
}

func keysCreate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keys create", "atp keys create --kind toolkit|llm --name N [--owner O] [--toolkit T] [--json]")
	kind := fs.String("kind", "", "`toolkit` (serves one toolkit) or llm (an agent)")
	name := fs.String("name", "", "a label for people, e.g. \"ci\"")
	owner := fs.String("owner", store.DefaultOwner, "owner: an LLM key sees only its owner's toolkits")
	toolkit := fs.String("toolkit", "", "toolkit keys: the toolkit the key may serve, even one other keys serve already (default: bound at its first registration, to a name no other key holds)")
	asJSON := fs.Bool("json", false, "print the key as JSON")
	db := dbFlag(fs, e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case *kind != string(store.KindToolkit) && *kind != string(store.KindLLM):
		return usagef("--kind: expected toolkit or llm, got %q", *kind)
	case *name == "":
		return usagef("--name is required")
	case *toolkit != "" && *kind != string(store.KindToolkit):
		return usagef("--toolkit applies to toolkit keys only")
	}
	st, err := openStore(ctx, e, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	k, apiKey, err := st.CreateKey(ctx, store.NewKey{Kind: store.KeyKind(*kind), Name: *name, Owner: *owner, Toolkit: *toolkit})
	if err != nil {
		return err
	}
	if *asJSON {
		j := toJSON(k)
		j.APIKey = apiKey
		return writeJSON(e, j)
	}
	printNewKey(e, "Created", k, apiKey)
	return alsoServing(ctx, e, st, k)
}

func printNewKey(e *env, verb string, k store.Key, apiKey string) {
	fmt.Fprintf(e.stdout, "%s %s key %q (id %s, owner %s", verb, k.Kind, k.Name, k.ID, k.Owner)
	if k.Toolkit != "" {
		fmt.Fprintf(e.stdout, ", toolkit %s", k.Toolkit)
	}
	fmt.Fprintf(e.stdout, ").\nThe key is shown once: copy it now.\n\n%s\n", apiKey)
}

// alsoServing lists the other active keys that serve the new key's
// toolkit: the new key serves beside them until they are revoked.
func alsoServing(ctx context.Context, e *env, st *store.Store, k store.Key) error {
	if k.Toolkit == "" {
		return nil
	}
	keys, err := st.ListKeys(ctx)
	if err != nil {
		return err
	}
	var others []store.Key
	for _, o := range keys {
		if o.ID != k.ID && o.Owner == k.Owner && o.Toolkit == k.Toolkit && !o.Revoked() {
			others = append(others, o)
		}
	}
	if len(others) == 0 {
		return nil
	}
	fmt.Fprintf(e.stdout, "\nToolkit %s is also served by:\n", k.Toolkit)
	for _, o := range others {
		fmt.Fprintf(e.stdout, "  %s (%s)\n", o.ID, o.Name)
	}
	fmt.Fprintln(e.stdout, "They keep working beside the new key: once it is deployed, revoke them with atp keys revoke ID.")
	return nil
}

// keysRotate makes a key that replaces another: same kind, owner and
// toolkit. The old key keeps working until it is revoked, so the toolkit
// can move to the new key without going offline.
func keysRotate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keys rotate", "atp keys rotate ID [--name N] [--json]")
	name := fs.String("name", "", "a label for the new key (default: the old key's)")
	asJSON := fs.Bool("json", false, "print the new key as JSON")
	db := dbFlag(fs, e)
	ids, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return usagef("expected exactly one key id (see atp keys list), got %d arguments", len(ids))
	}
	id := ids[0]
	if _, pasted, _, ok := store.ParseKey(id); ok {
		id = pasted // the whole key was pasted: use its id, never echo it
	}
	st, err := openStore(ctx, e, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	old, k, apiKey, err := st.RotateKey(ctx, id, *name)
	if errors.Is(err, store.ErrKeyNotFound) {
		return fmt.Errorf("no key with id %q (see atp keys list)", id)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		j := toJSON(k)
		j.APIKey = apiKey
		return writeJSON(e, j)
	}
	printNewKey(e, "Created", k, apiKey)
	if old.Revoked() {
		fmt.Fprintf(e.stdout, "\nIt replaces key %s, which was already revoked.\n", old.ID)
		return nil
	}
	fmt.Fprintf(e.stdout, "\nIt replaces key %s, which keeps working until you revoke it: deploy the new key, then run\n\n  atp keys revoke %s\n", old.ID, old.ID)
	return nil
}

func keysList(ctx context.Context, e *env, args []string) error {
	st, asJSON, err := openForList(ctx, e, "keys list", "atp keys list [--json]", "print the keys as a JSON array", args)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := st.ListKeys(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]keyJSON, 0, len(keys))
		for _, k := range keys {
			out = append(out, toJSON(k))
		}
		return writeJSON(e, out)
	}
	if len(keys) == 0 {
		fmt.Fprintln(e.stdout, "No keys. Create one with: atp keys create --kind toolkit|llm --name NAME")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tNAME\tOWNER\tTOOLKIT\tCREATED\tSTATUS")
	for _, k := range keys {
		status := "active"
		if k.Revoked() {
			status = "revoked " + k.RevokedAt.Format(time.DateTime)
		}
		toolkit := k.Toolkit
		if toolkit == "" {
			toolkit = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Kind, k.Name, k.Owner, toolkit, k.CreatedAt.Format(time.DateTime), status)
	}
	return tw.Flush()
}

func keysRevoke(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keys revoke", "atp keys revoke ID [--json]")
	asJSON := fs.Bool("json", false, "print the revoked key as JSON")
	db := dbFlag(fs, e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("expected exactly one key id (see atp keys list), got %d arguments", fs.NArg())
	}
	id := fs.Arg(0)
	if _, _, _, ok := store.ParseKey(id); ok {
		// Someone pasted the whole key: revoke it by its id, never echo it.
		_, id, _, _ = store.ParseKey(id)
	}
	st, err := openStore(ctx, e, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.RevokeKey(ctx, id); err != nil {
		if errors.Is(err, store.ErrKeyNotFound) {
			return fmt.Errorf("no key with id %q (see atp keys list)", id)
		}
		return err
	}
	if *asJSON {
		keys, err := st.ListKeys(ctx)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.ID == id {
				return writeJSON(e, toJSON(k))
			}
		}
		return fmt.Errorf("key %s was revoked but is no longer listed", id)
	}
	fmt.Fprintf(e.stdout, "Revoked key %s. A running atp serve ends its connections and polls within a second (--revocation-check).\n", id)
	return nil
}

func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
