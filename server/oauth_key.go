package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/atpgo/atp/server/store"
)

// SecretKeyEnv is the environment variable `atp serve` and `atp platforms`
// read the secret key from: 32 bytes, base64.
const SecretKeyEnv = "ATP_SECRET_KEY"

// ErrNoSecretKey says that the secret key that encrypts OAuth tokens and
// client secrets at rest is missing, and how to give one.
var ErrNoSecretKey = errors.New("no secret key to encrypt OAuth tokens and client secrets at rest: " +
	"set " + SecretKeyEnv + " to 32 random bytes in base64 (e.g. `openssl rand -base64 32`) " +
	"or pass --secret-key-file FILE holding them (Config.SecretKey in Go); --dev generates one")

// ParseSecretKey decodes a secret key written as base64 (standard or
// URL-safe, padded or not) of exactly 32 bytes.
func ParseSecretKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errors.New("secret key: empty")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(text); err == nil {
			if len(key) != store.SecretKeySize {
				return nil, fmt.Errorf("secret key: expected %d bytes in base64, got %d bytes", store.SecretKeySize, len(key))
			}
			return key, nil
		}
	}
	return nil, fmt.Errorf("secret key: expected %d bytes in base64, got text that is not base64", store.SecretKeySize)
}

// ReadSecretKeyFile reads a secret key file: base64 text of 32 bytes (the
// format --dev writes), or exactly 32 raw bytes.
func ReadSecretKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	if len(data) == store.SecretKeySize && !isBase64Text(data) {
		return data, nil
	}
	key, err := ParseSecretKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

func isBase64Text(b []byte) bool {
	return len(bytes.TrimLeft(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_\r\n")) == 0
}

// DevSecretKeyPath is where dev mode keeps the secret key it generates for
// the database at dbPath: beside it, as <db>.secret-key.
func DevSecretKeyPath(dbPath string) string { return dbPath + ".secret-key" }

// devSecretKey loads the dev key beside dbPath, creating it (mode 0600)
// when missing; created says which.
func devSecretKey(dbPath string) (key []byte, created bool, err error) {
	path := DevSecretKeyPath(dbPath)
	key, err = ReadSecretKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	key = make([]byte, store.SecretKeySize)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process made it first
		key, err = ReadSecretKeyFile(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("dev secret key: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("dev secret key: %w", err)
	}
	return key, true, nil
}

// openVault resolves the server's secret key and opens the store's vault
// with it:
//   - Config.SecretKey when set;
//   - an in-memory store gets a random key: nothing is at rest, and the
//     tokens go when the process does;
//   - in dev mode, the key file beside the database, generated on first use;
//   - otherwise there is no key: the vault is nil and the broker answers
//     that it is off, saying how to give one (newBroker refuses to start
//     when OAuth platforms are configured).
func (s *Server) openVault(ctx context.Context) (_ *store.Vault, err error) {
	var newFile string // a dev key file this call created
	defer func() {
		if err != nil && newFile != "" {
			// A key that does not open the database is of no use later
			// either: a failed start leaves nothing behind.
			os.Remove(newFile)
		}
	}()
	key := s.cfg.SecretKey
	if key == nil {
		path, err := s.store.Path(ctx)
		if err != nil {
			return nil, err
		}
		switch {
		case s.store.Engine() == store.EnginePostgres:
			// No file to keep a dev key beside, and the servers sharing
			// the database must share the key.
			s.log.Info("OAuth broker off: no secret key; to use OAuth platforms and webhooks, set " + SecretKeyEnv +
				" or pass --secret-key-file, with the same key on every server sharing the database")
			return nil, nil
		case path == "":
			key = make([]byte, store.SecretKeySize)
			rand.Read(key)
		case s.cfg.Dev:
			var created bool
			if key, created, err = devSecretKey(path); err != nil {
				return nil, err
			}
			if created {
				newFile = DevSecretKeyPath(path)
			}
			verb := "uses"
			if created {
				verb = "generated"
			}
			s.log.Warn("dev mode "+verb+" a secret key kept beside the database; outside --dev pass --secret-key-file or set "+SecretKeyEnv,
				"file", DevSecretKeyPath(path))
		default:
			s.log.Info("OAuth broker off: no secret key; to use OAuth platforms and webhooks, set " + SecretKeyEnv + " or pass --secret-key-file")
			return nil, nil
		}
	}
	v, err := s.store.Vault(ctx, key)
	if errors.Is(err, store.ErrWrongSecretKey) {
		path, _ := s.store.Path(ctx)
		return nil, fmt.Errorf("server: %w", WrongSecretKeyError(ctx, s.store, path))
	}
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return v, nil
}

// WrongSecretKeyError explains store.ErrWrongSecretKey for the database at
// dbPath. A database first used by `atp serve --dev` is sealed with the key
// dev mode keeps beside it: when that file is there, the error names it,
// and says whether its key opens the database.
func WrongSecretKeyError(ctx context.Context, st *store.Store, dbPath string) error {
	if dbPath != "" {
		file := DevSecretKeyPath(dbPath)
		if key, err := ReadSecretKeyFile(file); err == nil {
			if _, err := st.Vault(ctx, key); err == nil {
				return fmt.Errorf("%w: it was first used by atp serve --dev, with the key dev mode keeps in %s: "+
					"pass --secret-key-file %s (or set %s to its content), or start with a new database", store.ErrWrongSecretKey, file, file, SecretKeyEnv)
			}
			return fmt.Errorf("%w, nor is the key in %s (kept by atp serve --dev): give the key the database was first used with", store.ErrWrongSecretKey, file)
		}
	}
	return fmt.Errorf("%w: give the key the database was first used with", store.ErrWrongSecretKey)
}
