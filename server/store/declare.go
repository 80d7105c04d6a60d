package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Declaration is a complete tool declaration of a toolkit, such as a
// Platools tool_register: the toolkit has exactly Tools afterwards.
type Declaration struct {
	KeyID       string
	Toolkit     string
	ToolkitHash string
	Language    string
	// Tools are the toolkit's tools, names unique. Tool.CodeHash tells an
	// updated tool from an unchanged one.
	Tools        []Tool
	RegisteredAt time.Time // the store's clock when zero
}

// Declared says what a Declaration changed, by tool name, each list
// sorted: tools it added, tools whose CodeHash changed, and tools it
// removed.
type Declared struct {
	New, Updated, Pruned []string
}

// Declare stores a complete declaration in one transaction: it binds an
// unbound toolkit key to the toolkit as Register does (with the same
// refusals: ErrInvalidKey, ErrRevokedKey, ErrWrongKind,
// ErrKeyBoundElsewhere, a *ToolkitTakenError), creates or updates the
// toolkit, stores every declared tool, and deletes the toolkit's other
// tools. It returns the key as it is after the binding.
func (s *Store) Declare(ctx context.Context, d Declaration) (Key, Declared, error) {
	if err := ValidToolkitName(d.Toolkit); err != nil {
		return Key{}, Declared{}, err
	}
	names := make(map[string]bool, len(d.Tools))
	for _, t := range d.Tools {
		if names[t.Name] {
			return Key{}, Declared{}, fmt.Errorf("declaration of toolkit %q: tool %q is declared twice", d.Toolkit, t.Name)
		}
		names[t.Name] = true
	}
	now := d.RegisteredAt
	if now.IsZero() {
		now = s.now()
	}
	var key Key
	var out Declared
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if key, err = bindKey(ctx, tx, d.KeyID, d.Toolkit); err != nil {
			return err
		}
		old := map[string]string{} // name -> code_hash
		rows, err := tx.QueryContext(ctx, `SELECT name, code_hash FROM tools WHERE owner = ? AND toolkit = ?`, key.Owner, d.Toolkit)
		if err != nil {
			return fmt.Errorf("read tools: %w", err)
		}
		for rows.Next() {
			var name, hash string
			if err := rows.Scan(&name, &hash); err != nil {
				rows.Close()
				return err
			}
			old[name] = hash
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO toolkits (owner, name, toolkit_hash, language, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (owner, name) DO UPDATE SET toolkit_hash = excluded.toolkit_hash, language = excluded.language, updated_at = excluded.updated_at`,
			key.Owner, d.Toolkit, d.ToolkitHash, d.Language, millis(now)); err != nil {
			return fmt.Errorf("save toolkit: %w", err)
		}
		for _, t := range d.Tools {
			hash, existed := old[t.Name]
			switch {
			case !existed:
				out.New = append(out.New, t.Name)
			case hash == t.CodeHash:
				continue // unchanged: its updated_at stays
			default:
				out.Updated = append(out.Updated, t.Name)
			}
			params, _ := json.Marshal(nonNil(t.Params))
			required, _ := json.Marshal(nonNil(t.RequiredParams))
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO tools (owner, toolkit, name, description, params, required_params,
				input_schema, output_schema, inferred, auth_provider, auth_type, auth_with, needs_auth_token, code_hash, hints, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				key.Owner, d.Toolkit, t.Name, t.Description, string(params), string(required),
				string(t.InputSchema), nullText(t.OutputSchema), t.Inferred, t.AuthProvider, t.AuthType, t.AuthWith,
				t.NeedsAuthToken, t.CodeHash, nullText(t.Hints), millis(now)); err != nil {
				return fmt.Errorf("save tool %s: %w", t.Name, err)
			}
		}
		for name := range old {
			if names[name] {
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM tools WHERE owner = ? AND toolkit = ? AND name = ?`, key.Owner, d.Toolkit, name); err != nil {
				return fmt.Errorf("prune tool %s: %w", name, err)
			}
			out.Pruned = append(out.Pruned, name)
		}
		return nil
	})
	if err != nil {
		return Key{}, Declared{}, err
	}
	slices.Sort(out.New)
	slices.Sort(out.Updated)
	slices.Sort(out.Pruned)
	return key, out, nil
}

// bindKey reads the key keyID inside tx and binds it to toolkit when it is
// bound to none, with Register's checks: the key must exist, be a toolkit
// key, not be revoked, not be bound to another toolkit, and, unbound, ask
// for a name no other key of its owner holds.
func bindKey(ctx context.Context, tx *sql.Tx, keyID, toolkit string) (Key, error) {
	var (
		key     Key
		kind    string
		revoked sql.NullInt64
		created int64
	)
	err := tx.QueryRowContext(ctx, `SELECT id, kind, name, owner, toolkit, created_at, revoked_at FROM keys WHERE id = ?`, keyID).
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
		if err := checkUnclaimed(ctx, tx, key, toolkit); err != nil {
			return Key{}, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET toolkit = ? WHERE id = ?`, toolkit, key.ID); err != nil {
			return Key{}, fmt.Errorf("bind key: %w", err)
		}
		key.Toolkit = toolkit
	}
	return key, nil
}
