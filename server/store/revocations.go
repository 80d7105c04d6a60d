package store

import (
	"context"
	"fmt"
)

// RevokedKeyCount returns the number of revoked keys. A revocation is never
// undone and keys are never deleted, so the number only grows: a server
// that sees it change knows a key was revoked, by itself or by another
// process on the same file (atp keys revoke), and then asks RevokedKeyIDs
// which.
func (s *Store) RevokedKeyCount(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE revoked_at IS NOT NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count revoked keys: %w", err)
	}
	return n, nil
}

// RevokedKeyIDs returns the ids of the revoked keys.
func (s *Store) RevokedKeyIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM keys WHERE revoked_at IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("list revoked keys: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list revoked keys: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
