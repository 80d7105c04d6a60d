package store

import (
	"context"
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
	err := s.tx(ctx, func(tx handle) error {
		var err error
		if key, err = s.bindKey(ctx, tx, d.KeyID, d.Toolkit); err != nil {
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
		if err := saveToolkit(ctx, tx, key.Owner, d.Toolkit, d.ToolkitHash, d.Language, now); err != nil {
			return err
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
			if err := saveTool(ctx, tx, key.Owner, d.Toolkit, t, now); err != nil {
				return err
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
