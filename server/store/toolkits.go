package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Toolkit is a registered toolkit: a named set of tools of one owner.
type Toolkit struct {
	Owner string
	Name  string
	// Hash is the toolkit_hash of the last registration.
	Hash string
	// Language is the programming_language of the last registration
	// ("Python", "Go", ...).
	Language  string
	UpdatedAt time.Time
	Tools     []Tool // sorted by name
}

// Tool is one registered tool.
type Tool struct {
	Name           string
	Description    string
	Params         []string
	RequiredParams []string
	// InputSchema is the JSON Schema of the params object: the toolkit's
	// own, or built from Params when the toolkit sent none (Inferred).
	InputSchema  json.RawMessage
	OutputSchema json.RawMessage // nil when not sent
	Inferred     bool
	AuthProvider string
	AuthType     string
	AuthWith     string
	// NeedsAuthToken is the toolkit's word that the tool needs the end
	// user's token even without an AuthProvider (a Go tool taking a
	// runtime.AuthToken). False for Python tools, which never say so.
	NeedsAuthToken bool
	CodeHash       string
	Hints          json.RawMessage // nil when not sent
	UpdatedAt      time.Time
}

var (
	// ErrKeyBoundElsewhere is returned when a toolkit key registers a toolkit
	// other than the one it is bound to.
	ErrKeyBoundElsewhere = errors.New("toolkit key is bound to another toolkit")
	// ErrWrongKind is returned when an LLM key is used to register.
	ErrWrongKind = errors.New("not a toolkit key")
	// ErrToolkitNotFound is returned for an unknown toolkit.
	ErrToolkitNotFound = errors.New("toolkit not found")
	// ErrToolkitTaken is returned when a key not bound to any toolkit tries
	// to take a toolkit name that another key of its owner holds. The error
	// is a *ToolkitTakenError.
	ErrToolkitTaken = errors.New("toolkit belongs to another key")
)

// ToolkitTakenError says which toolkit a key could not take, and how the
// owner moves a toolkit to a new key.
type ToolkitTakenError struct {
	Owner, Toolkit string
	KeyID          string // the key that was refused
}

func (e *ToolkitTakenError) Error() string {
	return fmt.Sprintf("toolkit %q of owner %q belongs to another key (the one that first registered it, or one created for it), "+
		"so key %s cannot register or serve it. To move a toolkit to a new key, create a key bound to it "+
		"(atp keys create --kind toolkit --toolkit %s --name NAME, or atp keys rotate OLD_KEY_ID), "+
		"deploy the new key, then revoke the old one (atp keys list, atp keys revoke OLD_KEY_ID)",
		e.Toolkit, e.Owner, e.KeyID, e.Toolkit)
}

func (e *ToolkitTakenError) Unwrap() error { return ErrToolkitTaken }

// Registration is one register_tool call.
type Registration struct {
	KeyID        string
	Toolkit      string
	ToolkitHash  string
	Language     string
	Tool         Tool
	RegisteredAt time.Time // the store's clock when zero
}

// Register stores one tool of a toolkit, in one transaction: it binds an
// unbound toolkit key to the toolkit, creates or updates the toolkit (owned
// by the key's owner) and creates or replaces the tool. It returns the key
// as it is after the binding. A revoked key, a key of another kind, a key
// bound to another toolkit, or an unbound key asking for a toolkit that
// another key of its owner holds (ErrToolkitTaken) changes nothing.
//
// A toolkit name belongs to the keys bound to it: the key whose first
// registration bound it, and keys created for it (NewKey.Toolkit), which is
// how an owner rotates a toolkit's key. A key bound to no toolkit can take
// only a name no other key of its owner holds, revoked keys included: a
// name never falls free for whichever key asks next.
func (s *Store) Register(ctx context.Context, r Registration) (Key, error) {
	if err := ValidToolkitName(r.Toolkit); err != nil {
		return Key{}, err
	}
	now := r.RegisteredAt
	if now.IsZero() {
		now = s.now()
	}
	var key Key
	err := s.tx(ctx, func(tx handle) error {
		var err error
		if key, err = s.bindKey(ctx, tx, r.KeyID, r.Toolkit); err != nil {
			return err
		}
		if err := saveToolkit(ctx, tx, key.Owner, r.Toolkit, r.ToolkitHash, r.Language, now); err != nil {
			return err
		}
		return saveTool(ctx, tx, key.Owner, r.Toolkit, r.Tool, now)
	})
	if err != nil {
		return Key{}, err
	}
	return key, nil
}

// bindKey reads the key keyID inside tx and binds it to toolkit when it is
// bound to none: the key must exist, be a toolkit key, not be revoked, not
// be bound to another toolkit and, unbound, ask for a name no other key of
// its owner holds. The key's row stays locked to the end of tx: two
// registrations of one unbound key, for two names, bind it once.
func (s *Store) bindKey(ctx context.Context, tx handle, keyID, toolkit string) (Key, error) {
	var (
		key     Key
		kind    string
		revoked sql.NullInt64
		created int64
	)
	err := tx.QueryRowContext(ctx, `SELECT id, kind, name, owner, toolkit, created_at, revoked_at FROM keys WHERE id = ?`+s.d.forUpdate, keyID).
		Scan(&key.ID, &kind, &key.Name, &key.Owner, &key.Toolkit, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, ErrInvalidKey
	}
	if err != nil {
		return Key{}, err
	}
	key.Kind, key.CreatedAt = KeyKind(kind), fromMillis(created)
	switch {
	case revoked.Valid:
		return Key{}, ErrRevokedKey
	case key.Kind != KindToolkit:
		return Key{}, ErrWrongKind
	case key.Toolkit != "" && key.Toolkit != toolkit:
		return Key{}, fmt.Errorf("%w: key %s serves toolkit %q, not %q", ErrKeyBoundElsewhere, key.ID, key.Toolkit, toolkit)
	case key.Toolkit == "":
		// Two unbound keys racing for one name: the second waits here
		// until the first commits, then finds the name taken.
		if err := s.lock(ctx, tx, "atp/toolkit", key.Owner, toolkit); err != nil {
			return Key{}, fmt.Errorf("lock toolkit name: %w", err)
		}
		if err := checkUnclaimed(ctx, tx, key, toolkit); err != nil {
			return Key{}, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET toolkit = ? WHERE id = ? AND toolkit = ''`, toolkit, key.ID); err != nil {
			return Key{}, fmt.Errorf("bind key: %w", err)
		}
		key.Toolkit = toolkit
	}
	return key, nil
}

// saveToolkit creates or updates a toolkit's row.
func saveToolkit(ctx context.Context, tx handle, owner, name, hash, language string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO toolkits (owner, name, toolkit_hash, language, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (owner, name) DO UPDATE SET toolkit_hash = excluded.toolkit_hash, language = excluded.language, updated_at = excluded.updated_at`,
		owner, name, hash, language, millis(now)); err != nil {
		return fmt.Errorf("save toolkit: %w", err)
	}
	return nil
}

// saveTool creates or replaces one tool of a toolkit.
func saveTool(ctx context.Context, tx handle, owner, toolkit string, t Tool, now time.Time) error {
	params, _ := json.Marshal(nonNil(t.Params))
	required, _ := json.Marshal(nonNil(t.RequiredParams))
	if _, err := tx.ExecContext(ctx, `INSERT INTO tools (owner, toolkit, name, description, params, required_params,
		input_schema, output_schema, inferred, auth_provider, auth_type, auth_with, needs_auth_token, code_hash, hints, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (owner, toolkit, name) DO UPDATE SET description = excluded.description, params = excluded.params,
			required_params = excluded.required_params, input_schema = excluded.input_schema, output_schema = excluded.output_schema,
			inferred = excluded.inferred, auth_provider = excluded.auth_provider, auth_type = excluded.auth_type,
			auth_with = excluded.auth_with, needs_auth_token = excluded.needs_auth_token, code_hash = excluded.code_hash,
			hints = excluded.hints, updated_at = excluded.updated_at`,
		owner, toolkit, t.Name, t.Description, string(params), string(required),
		string(t.InputSchema), nullText(t.OutputSchema), t.Inferred, t.AuthProvider, t.AuthType, t.AuthWith,
		t.NeedsAuthToken, t.CodeHash, nullText(t.Hints), millis(now)); err != nil {
		return fmt.Errorf("save tool %s: %w", t.Name, err)
	}
	return nil
}

// queryRower is a handle on the database or a transaction.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkUnclaimed returns a *ToolkitTakenError when a key of key's owner
// other than key is bound to toolkit. It runs inside the transaction that
// binds key, so two unbound keys racing for one name cannot both win.
func checkUnclaimed(ctx context.Context, tx queryRower, key Key, toolkit string) error {
	var holder string
	err := tx.QueryRowContext(ctx, `SELECT id FROM keys WHERE owner = ? AND toolkit = ? AND id <> ? LIMIT 1`,
		key.Owner, toolkit, key.ID).Scan(&holder)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("check toolkit %q: %w", toolkit, err)
	}
	return &ToolkitTakenError{Owner: key.Owner, Toolkit: toolkit, KeyID: key.ID}
}

// CheckClaim reports whether key may serve toolkit, without binding it: nil
// when it is bound to toolkit, or bound to none while no other key of its
// owner holds the name; ErrKeyBoundElsewhere or a *ToolkitTakenError
// otherwise. verify_hash uses it, so that a key that could not register a
// toolkit learns so before it tries.
func (s *Store) CheckClaim(ctx context.Context, key Key, toolkit string) error {
	switch {
	case key.Toolkit == toolkit:
		return nil
	case key.Toolkit != "":
		return fmt.Errorf("%w: key %s serves toolkit %q, not %q", ErrKeyBoundElsewhere, key.ID, key.Toolkit, toolkit)
	}
	return checkUnclaimed(ctx, s.db, key, toolkit)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nullText(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// Toolkit returns one toolkit with its tools.
func (s *Store) Toolkit(ctx context.Context, owner, name string) (Toolkit, error) {
	return s.oneToolkit(ctx, owner, name, "")
}

// ToolkitTool returns one toolkit with only its tool named tool (no tool
// when it has none of that name): what a replica reads to apply another's
// registration of one tool, at a cost that does not grow with the toolkit.
func (s *Store) ToolkitTool(ctx context.Context, owner, name, tool string) (Toolkit, error) {
	return s.oneToolkit(ctx, owner, name, tool)
}

func (s *Store) oneToolkit(ctx context.Context, owner, name, tool string) (Toolkit, error) {
	tks, err := s.toolkits(ctx, owner, name, tool)
	if err != nil {
		return Toolkit{}, err
	}
	if len(tks) == 0 {
		return Toolkit{}, fmt.Errorf("toolkit %q of owner %q: %w", name, owner, ErrToolkitNotFound)
	}
	return tks[0], nil
}

// Toolkits returns every toolkit with its tools, by owner and name.
func (s *Store) Toolkits(ctx context.Context) ([]Toolkit, error) {
	return s.toolkits(ctx, "", "", "")
}

// toolkits reads every toolkit when name is empty; else toolkit name of
// owner, with all its tools, or only the one named tool when it is not
// empty.
func (s *Store) toolkits(ctx context.Context, owner, name, tool string) ([]Toolkit, error) {
	var where, toolWhere string
	var args, toolArgs []any
	if name != "" {
		where, args = `WHERE owner = ? AND name = ?`, []any{owner, name}
		toolWhere, toolArgs = `WHERE owner = ? AND toolkit = ?`, args
		if tool != "" {
			toolWhere, toolArgs = toolWhere+` AND name = ?`, []any{owner, name, tool}
		}
	}
	var out []Toolkit
	// One transaction, so that toolkits and tools are read from one snapshot.
	err := s.readTx(ctx, func(tx handle) error {
		rows, err := tx.QueryContext(ctx, `SELECT owner, name, toolkit_hash, language, updated_at FROM toolkits `+where+` ORDER BY owner, name`, args...)
		if err != nil {
			return err
		}
		index := map[[2]string]int{}
		for rows.Next() {
			var tk Toolkit
			var updated int64
			if err := rows.Scan(&tk.Owner, &tk.Name, &tk.Hash, &tk.Language, &updated); err != nil {
				rows.Close()
				return err
			}
			tk.UpdatedAt = fromMillis(updated)
			index[[2]string{tk.Owner, tk.Name}] = len(out)
			out = append(out, tk)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, `SELECT owner, toolkit, name, description, params, required_params, input_schema,
			output_schema, inferred, auth_provider, auth_type, auth_with, needs_auth_token, code_hash, hints, updated_at FROM tools `+toolWhere+` ORDER BY owner, toolkit, name`, toolArgs...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				owner, toolkit, params, required, input string
				output, hints                           sql.NullString
				updated                                 int64
				t                                       Tool
			)
			if err := rows.Scan(&owner, &toolkit, &t.Name, &t.Description, &params, &required, &input,
				&output, &t.Inferred, &t.AuthProvider, &t.AuthType, &t.AuthWith, &t.NeedsAuthToken, &t.CodeHash, &hints, &updated); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(params), &t.Params); err != nil {
				return fmt.Errorf("tool %s/%s: stored params: %w", toolkit, t.Name, err)
			}
			if err := json.Unmarshal([]byte(required), &t.RequiredParams); err != nil {
				return fmt.Errorf("tool %s/%s: stored required_params: %w", toolkit, t.Name, err)
			}
			t.InputSchema = json.RawMessage(input)
			if output.Valid {
				t.OutputSchema = json.RawMessage(output.String)
			}
			if hints.Valid {
				t.Hints = json.RawMessage(hints.String)
			}
			t.UpdatedAt = fromMillis(updated)
			if i, ok := index[[2]string{owner, toolkit}]; ok {
				out[i].Tools = append(out[i].Tools, t)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read toolkits: %w", err)
	}
	return out, nil
}

// ToolkitHash returns the stored toolkit_hash of a toolkit, and whether the
// toolkit exists.
func (s *Store) ToolkitHash(ctx context.Context, owner, name string) (string, bool, error) {
	var h string
	err := s.db.QueryRowContext(ctx, `SELECT toolkit_hash FROM toolkits WHERE owner = ? AND name = ?`, owner, name).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return h, err == nil, err
}

// ToolHash returns the stored code_hash of a tool, and whether the tool
// exists.
func (s *Store) ToolHash(ctx context.Context, owner, toolkit, tool string) (string, bool, error) {
	var h string
	err := s.db.QueryRowContext(ctx, `SELECT code_hash FROM tools WHERE owner = ? AND toolkit = ? AND name = ?`, owner, toolkit, tool).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return h, err == nil, err
}
