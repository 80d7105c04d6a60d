package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// KeyKind says what a key may do: serve one toolkit, or act as an LLM client.
type KeyKind string

const (
	KindToolkit KeyKind = "toolkit"
	KindLLM     KeyKind = "llm"
)

// prefix is what an API key of the kind starts with.
func (k KeyKind) prefix() string {
	switch k {
	case KindToolkit:
		return "atp_tk_"
	case KindLLM:
		return "atp_llm_"
	}
	return ""
}

// DefaultOwner owns keys created without an owner.
const DefaultOwner = "default"

// Key is a stored API key, without its secret.
type Key struct {
	ID   string
	Kind KeyKind
	// Name is a label for people ("ci", "alice's laptop").
	Name string
	// Owner scopes what the key sees: an LLM key sees only its owner's
	// toolkits, and a toolkit key registers toolkits for its owner.
	Owner string
	// Toolkit is the one toolkit a toolkit key may serve: the one it was
	// created for, else the one its first registration bound it to ("" until
	// then). A key bound to no toolkit cannot take a name another key of its
	// owner holds (see Register).
	Toolkit   string
	CreatedAt time.Time
	// RevokedAt is zero for a key in use.
	RevokedAt time.Time
}

// Revoked reports whether the key has been revoked.
func (k Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// NewKey describes a key to create.
type NewKey struct {
	Kind  KeyKind
	Name  string
	Owner string // DefaultOwner when empty
	// Toolkit binds a toolkit key at creation (optional). The key may serve
	// the toolkit even when other keys already do: that is how an owner
	// gives a toolkit a new key.
	Toolkit string
}

var (
	// ErrInvalidKey is returned for a key that is malformed, unknown, of the
	// wrong kind or has the wrong secret. Its message never contains the key.
	ErrInvalidKey = errors.New("invalid API key")
	// ErrRevokedKey is returned for a key that was revoked.
	ErrRevokedKey = errors.New("API key has been revoked")
	// ErrKeyNotFound is returned by RevokeKey for an unknown key id.
	ErrKeyNotFound = errors.New("no such key")
)

var ownerPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// ValidToolkitName reports why name cannot be a toolkit name, or nil. The
// Python SDK lets developers pick any app_name, so the rule is loose: up to
// 128 bytes of UTF-8 text without control characters or '/', and without
// leading or trailing spaces.
func ValidToolkitName(name string) error {
	switch {
	case name == "":
		return errors.New("empty toolkit name")
	case len(name) > 128:
		return fmt.Errorf("toolkit name %.20q... is %d bytes long: at most 128 are allowed", name, len(name))
	case !utf8.ValidString(name):
		return fmt.Errorf("toolkit name %q is not valid UTF-8", name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("toolkit name %q has leading or trailing spaces", name)
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == '/' }):
		return fmt.Errorf("toolkit name %q: control characters and '/' are not allowed", name)
	}
	return nil
}

// Keys are "atp_tk_<id>_<secret>" or "atp_llm_<id>_<secret>": base32 of
// crypto/rand bytes, lower case, so that a key is safe in a URL path and
// never contains the '_' that separates its parts.
var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

const (
	idBytes     = 10 // 16 characters
	secretBytes = 32 // 52 characters, 256 bits
)

func randomText(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error (crypto/rand, Go 1.24+)
	return strings.ToLower(keyEncoding.EncodeToString(b))
}

// hashSecret is SHA-256. A slow password hash (bcrypt, argon2) exists to make
// guessing low-entropy passwords expensive; these secrets are 256 random
// bits, which no guessing reaches, so a fast hash loses nothing and keeps
// per-request authentication cheap. Only the hash is stored, so a copy of the
// database does not hand out working keys.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateKey creates a key and returns it with the full API key, which is
// not stored anywhere and cannot be shown again.
func (s *Store) CreateKey(ctx context.Context, nk NewKey) (Key, string, error) {
	if nk.Kind != KindToolkit && nk.Kind != KindLLM {
		return Key{}, "", fmt.Errorf("key kind %q: expected %q or %q", nk.Kind, KindToolkit, KindLLM)
	}
	if strings.TrimSpace(nk.Name) == "" || len(nk.Name) > 200 {
		return Key{}, "", fmt.Errorf("key name %q: expected 1 to 200 characters", nk.Name)
	}
	if nk.Owner == "" {
		nk.Owner = DefaultOwner
	}
	if !ownerPattern.MatchString(nk.Owner) {
		return Key{}, "", fmt.Errorf("owner %q: expected 1 to 64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit", nk.Owner)
	}
	if nk.Toolkit != "" {
		if nk.Kind != KindToolkit {
			return Key{}, "", fmt.Errorf("toolkit %q: only a toolkit key is bound to a toolkit", nk.Toolkit)
		}
		if err := ValidToolkitName(nk.Toolkit); err != nil {
			return Key{}, "", err
		}
	}
	var (
		k      Key
		apiKey string
	)
	err := s.tx(ctx, func(tx handle) error {
		var err error
		k, apiKey, err = s.insertKey(ctx, tx, nk)
		return err
	})
	if err != nil {
		return Key{}, "", fmt.Errorf("create key: %w", err)
	}
	return k, apiKey, nil
}

// insertKey stores a new key made from a checked nk.
func (s *Store) insertKey(ctx context.Context, tx handle, nk NewKey) (Key, string, error) {
	k := Key{
		ID:        randomText(idBytes),
		Kind:      nk.Kind,
		Name:      nk.Name,
		Owner:     nk.Owner,
		Toolkit:   nk.Toolkit,
		CreatedAt: fromMillis(millis(s.now())),
	}
	secret := randomText(secretBytes)
	_, err := tx.ExecContext(ctx,
		`INSERT INTO keys (id, kind, name, owner, toolkit, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.ID, string(k.Kind), k.Name, k.Owner, k.Toolkit, hashSecret(secret), millis(k.CreatedAt))
	if err != nil {
		return Key{}, "", err
	}
	return k, k.Kind.prefix() + k.ID + "_" + secret, nil
}

// RotateKey creates a key that replaces the key with the given id: same
// kind, owner and toolkit (so it may serve the old key's toolkit beside
// it), named name, or the old key's name when name is "". The old key
// keeps working until it is revoked: deploy the new key first, then revoke
// the old one, and the toolkit never goes offline. It returns the old key
// and the new one with its full API key, shown once.
func (s *Store) RotateKey(ctx context.Context, id, name string) (old, rotated Key, apiKey string, err error) {
	err = s.tx(ctx, func(tx handle) error {
		rows, err := tx.QueryContext(ctx, keySelect+` WHERE id = ?`, id)
		if err != nil {
			return err
		}
		keys, err := scanKeys(rows)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return fmt.Errorf("key %q: %w", id, ErrKeyNotFound)
		}
		old = keys[0]
		if name == "" {
			name = old.Name
		}
		if strings.TrimSpace(name) == "" || len(name) > 200 {
			return fmt.Errorf("key name %q: expected 1 to 200 characters", name)
		}
		rotated, apiKey, err = s.insertKey(ctx, tx, NewKey{Kind: old.Kind, Name: name, Owner: old.Owner, Toolkit: old.Toolkit})
		return err
	})
	if err != nil {
		return Key{}, Key{}, "", fmt.Errorf("rotate key: %w", err)
	}
	return old, rotated, apiKey, nil
}

// ParseKey splits an API key into kind, id and secret. ok is false when the
// key is not in the format CreateKey makes.
func ParseKey(apiKey string) (kind KeyKind, id, secret string, ok bool) {
	var rest string
	switch {
	case strings.HasPrefix(apiKey, KindToolkit.prefix()):
		kind, rest = KindToolkit, apiKey[len(KindToolkit.prefix()):]
	case strings.HasPrefix(apiKey, KindLLM.prefix()):
		kind, rest = KindLLM, apiKey[len(KindLLM.prefix()):]
	default:
		return "", "", "", false
	}
	id, secret, found := strings.Cut(rest, "_")
	if !found || id == "" || secret == "" || len(id) > 64 || len(secret) > 256 {
		return "", "", "", false
	}
	return kind, id, secret, true
}

// dummyHash is compared against when a key id is unknown, so that an unknown
// id and a wrong secret take the same work.
var dummyHash = hashSecret("")

// Authenticate returns the key for apiKey. The error is ErrInvalidKey or
// ErrRevokedKey (or a database error); it never contains apiKey.
func (s *Store) Authenticate(ctx context.Context, apiKey string) (Key, error) {
	kind, id, secret, ok := ParseKey(apiKey)
	if !ok {
		return Key{}, ErrInvalidKey
	}
	var (
		k        Key
		kindText string
		stored   []byte
		created  int64
		revoked  sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx,
		`SELECT id, kind, name, owner, toolkit, secret_hash, created_at, revoked_at FROM keys WHERE id = ?`, id).
		Scan(&k.ID, &kindText, &k.Name, &k.Owner, &k.Toolkit, &stored, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		subtle.ConstantTimeCompare(dummyHash, hashSecret(secret))
		return Key{}, ErrInvalidKey
	}
	if err != nil {
		return Key{}, fmt.Errorf("look up key: %w", err)
	}
	if subtle.ConstantTimeCompare(stored, hashSecret(secret)) != 1 || KeyKind(kindText) != kind {
		return Key{}, ErrInvalidKey
	}
	k.Kind = kind
	k.CreatedAt = fromMillis(created)
	if revoked.Valid {
		k.RevokedAt = fromMillis(revoked.Int64)
		return k, ErrRevokedKey
	}
	return k, nil
}

// KeyByID returns the key with the given id, revoked or not.
func (s *Store) KeyByID(ctx context.Context, id string) (Key, error) {
	rows, err := s.db.QueryContext(ctx, keySelect+` WHERE id = ?`, id)
	if err != nil {
		return Key{}, err
	}
	keys, err := scanKeys(rows)
	if err != nil {
		return Key{}, err
	}
	if len(keys) == 0 {
		return Key{}, fmt.Errorf("key %q: %w", id, ErrKeyNotFound)
	}
	return keys[0], nil
}

// ListKeys returns every key, revoked ones included, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]Key, error) {
	rows, err := s.db.QueryContext(ctx, keySelect+` ORDER BY created_at, `+s.d.keyOrder)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return scanKeys(rows)
}

// CountKeys returns the number of keys, revoked ones included.
func (s *Store) CountKeys(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM keys`).Scan(&n)
	return n, err
}

const keySelect = `SELECT id, kind, name, owner, toolkit, created_at, revoked_at FROM keys`

func scanKeys(rows *sql.Rows) ([]Key, error) {
	defer rows.Close()
	var keys []Key
	for rows.Next() {
		var (
			k       Key
			kind    string
			created int64
			revoked sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &kind, &k.Name, &k.Owner, &k.Toolkit, &created, &revoked); err != nil {
			return nil, err
		}
		k.Kind = KeyKind(kind)
		k.CreatedAt = fromMillis(created)
		if revoked.Valid {
			k.RevokedAt = fromMillis(revoked.Int64)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// RevokeKey revokes the key with the given id. Revoking a revoked key is
// not an error and keeps the first revocation time.
func (s *Store) RevokeKey(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx handle) error {
		res, err := tx.ExecContext(ctx, `UPDATE keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, millis(s.now()), id)
		if err != nil {
			return fmt.Errorf("revoke key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("key %q: %w", id, ErrKeyNotFound)
		}
		return nil
	})
}
