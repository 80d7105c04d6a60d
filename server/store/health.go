package store

import (
	"context"
	"fmt"
)

// CheckWritable checks that the database takes a write: it commits a
// transaction that rewrites one row with its own value. A read-only file,
// a full disk or a lock held too long by another process fail it, where a
// read (Ping) would still succeed.
func (s *Store) CheckWritable(ctx context.Context) error {
	err := s.tx(ctx, func(tx handle) error {
		_, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = version`)
		return err
	})
	if err != nil {
		return fmt.Errorf("write check: %w", err)
	}
	return nil
}
