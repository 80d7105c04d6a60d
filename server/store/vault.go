package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// SecretKeySize is the length of the key that seals secrets at rest
// (AES-256).
const SecretKeySize = 32

// ErrWrongSecretKey is returned by Vault when the database's secrets were
// sealed with another key.
var ErrWrongSecretKey = errors.New("the secret key is not the one this database's secrets were encrypted with")

// Vault is the part of the store that holds secrets: OAuth platforms'
// client secrets, end users' tokens, webhook signing secrets and the PKCE
// verifiers of pending authorizations. Each is sealed with AES-256-GCM under
// the server's secret key, with a fresh random nonce per value and, as
// associated data, the identity of its row and column: a sealed value copied
// into another row or column (another user's token, a refresh token in the
// access token's place) fails to open instead of being used.
//
// Everything else (ids, URLs, scopes, e-mail addresses) is stored in clear.
type Vault struct {
	s    *Store
	aead cipher.AEAD
}

// sealVersion is the first byte of every sealed value: the format, so that
// a later one can be told apart.
const sealVersion byte = 1

// keyCheckPlaintext is sealed once per database, so that a wrong key is
// caught at start rather than at the first token read.
const keyCheckPlaintext = "atp secret key check"

// Vault returns the store's vault for key. The first call on a database
// records a check value sealed with key; later calls with another key fail
// with ErrWrongSecretKey.
func (s *Store) Vault(ctx context.Context, key []byte) (*Vault, error) {
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("secret key: expected %d bytes, got %d", SecretKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	v := &Vault{s: s, aead: aead}
	check := v.seal(keyCheckPlaintext, "key-check")
	var stored []byte
	err = s.tx(ctx, func(tx handle) error {
		// Two processes may start on a new database at once: the first
		// check value wins and the other is compared against it.
		if _, err := tx.ExecContext(ctx, `INSERT INTO secret_key_check (id, sealed, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`, check, millis(s.now())); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT sealed FROM secret_key_check WHERE id = 1`).Scan(&stored)
	})
	if err != nil {
		return nil, fmt.Errorf("secret key check: %w", err)
	}
	if got, err := v.open(stored, "key-check"); err != nil || got != keyCheckPlaintext {
		return nil, ErrWrongSecretKey
	}
	return v, nil
}

// Store returns the store the vault is part of.
func (v *Vault) Store() *Store { return v.s }

// seal encrypts plaintext for the row and column that ad names.
func (v *Vault) seal(plaintext string, ad ...string) []byte {
	nonce := make([]byte, v.aead.NonceSize())
	rand.Read(nonce) // never fails (crypto/rand, Go 1.24+)
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+v.aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, nonce...)
	return v.aead.Seal(out, nonce, []byte(plaintext), associatedData(ad))
}

// errUnsealable is what a value that does not open becomes: the cause
// (tampering, a swapped value, a wrong key) is not told apart by GCM.
var errUnsealable = errors.New("a stored secret does not decrypt with the secret key: the database was changed or the key is wrong")

func (v *Vault) open(sealed []byte, ad ...string) (string, error) {
	n := v.aead.NonceSize()
	if len(sealed) < 1+n+v.aead.Overhead() || sealed[0] != sealVersion {
		return "", errUnsealable
	}
	plain, err := v.aead.Open(nil, sealed[1:1+n], sealed[1+n:], associatedData(ad))
	if err != nil {
		return "", errUnsealable
	}
	return string(plain), nil
}

// associatedData encodes the parts naming a sealed value's place, each
// length-prefixed so that no two different lists encode alike.
func associatedData(parts []string) []byte {
	b := []byte("atp/vault/v1")
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// Path returns the file a SQLite database is in: where dev mode keeps a
// generated secret key. It is "" for an in-memory database and for
// PostgreSQL, which keep no file.
func (s *Store) Path(ctx context.Context) (string, error) {
	if s.d.engine != EngineSQLite {
		return "", nil
	}
	rows, err := s.db.QueryContext(ctx, `PRAGMA database_list`)
	if err != nil {
		return "", fmt.Errorf("database path: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq        int
			name, file string
		)
		if err := rows.Scan(&seq, &name, &file); err != nil {
			return "", fmt.Errorf("database path: %w", err)
		}
		if name == "main" {
			return file, nil
		}
	}
	return "", rows.Err()
}
