// Package secretbox seals small secrets (passwords, keys, tokens) for
// storage with AES-256-GCM, under a key ring that allows key rotation.
//
// A ring is configured as a comma-separated list of "id:base64(32 bytes)"
// entries, e.g. "k2:QUJD…,k1:REVG…". The first key is the current one: Seal
// always uses it. Every key of the ring opens: to rotate, put a new key
// first and keep the old ones after it; values sealed with an old key still
// open, and each value sealed again (on its next write) uses the new key.
//
// A sealed value is text, "v1:<key id>:<base64url(nonce | ciphertext)>",
// so a reader can tell which key it needs. Seal and Open take additional
// data (e.g. "connections/acme/s3.secret_access_key") that is authenticated
// but not stored: a value opens only with the same additional data, so it
// cannot be copied into another row or field.
//
// Errors name key ids, never keys or plaintexts.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// prefix starts every sealed value of this format version.
const prefix = "v1:"

var (
	// ErrNoKey is returned by Seal and Open of a nil Ring: no key is
	// configured.
	ErrNoKey = errors.New("no encryption key configured")
	// ErrUnknownKey: the value was sealed with a key the ring does not hold.
	ErrUnknownKey = errors.New("sealed with a key that is not in the key ring")
	// ErrOpen: the value does not open with its key: it was changed, or
	// belongs to other additional data (another row or field).
	ErrOpen = errors.New("does not open")
	// ErrFormat: the text is not a sealed value.
	ErrFormat = errors.New("not a sealed value")
)

// KeyError is an error about the value sealed with key ID. Is reports true
// for its Err (ErrUnknownKey, ErrOpen).
type KeyError struct {
	ID  string
	Err error
}

func (e *KeyError) Error() string {
	switch e.Err {
	case ErrUnknownKey:
		return fmt.Sprintf("sealed with key %q, which is not in the key ring", e.ID)
	case ErrOpen:
		return fmt.Sprintf("does not open with key %q: the value was changed or belongs to another record", e.ID)
	}
	return fmt.Sprintf("key %q: %v", e.ID, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

type key struct {
	id   string
	aead cipher.AEAD
}

// Ring is a set of keys, the first of which seals. A nil *Ring has no key:
// Seal and Open return ErrNoKey. A Ring is safe for concurrent use.
type Ring struct {
	keys []key
}

// ParseRing parses a key ring: comma-separated "id:base64" entries (standard
// or URL base64, padded or not), each key 32 bytes, ids unique
// (letters, digits, '_', '.', '-'). Spaces around entries are ignored.
// The empty string is an error: there is no ring; callers that allow none
// check for "" first.
func ParseRing(s string) (*Ring, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("key ring: empty (want id:base64-of-32-bytes[,id:…])")
	}
	r := &Ring{}
	seen := map[string]bool{}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		id, b64, ok := strings.Cut(entry, ":")
		switch {
		case entry == "":
			return nil, fmt.Errorf("key ring: entry %d is empty", i+1)
		case !ok:
			return nil, fmt.Errorf("key ring: entry %d is not id:base64 (no ':')", i+1)
		case !idPattern.MatchString(id):
			return nil, fmt.Errorf("key ring: entry %d: %q is not a key id (1-64 letters, digits, '_', '.', '-')", i+1, id)
		case seen[id]:
			return nil, fmt.Errorf("key ring: key id %q appears twice", id)
		}
		seen[id] = true
		raw, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("key ring: key %q is not base64", id)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("key ring: key %q is %d bytes, want %d (AES-256)", id, len(raw), KeySize)
		}
		k, err := newKey(id, raw)
		if err != nil {
			return nil, err
		}
		r.keys = append(r.keys, k)
	}
	return r, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, ErrFormat
}

func newKey(id string, raw []byte) (key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, fmt.Errorf("key ring: key %q: %w", id, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, fmt.Errorf("key ring: key %q: %w", id, err)
	}
	return key{id: id, aead: aead}, nil
}

// NewKey returns a new ring entry "id:base64" with a random key; the id is
// "k" and today's date (UTC), e.g. "k20261126", so a rotated ring reads
// newest first.
func NewKey() (string, error) {
	return NewKeyWithID("k" + time.Now().UTC().Format("20060102"))
}

// NewKeyWithID is NewKey with a chosen id.
func NewKeyWithID(id string) (string, error) {
	if !idPattern.MatchString(id) {
		return "", fmt.Errorf("%q is not a key id (1-64 letters, digits, '_', '.', '-')", id)
	}
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a key: %w", err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(b), nil
}

// CurrentID is the id of the key that seals; "" for a nil ring.
func (r *Ring) CurrentID() string {
	if r == nil || len(r.keys) == 0 {
		return ""
	}
	return r.keys[0].id
}

// IDs are the ids of the ring's keys, the current one first.
func (r *Ring) IDs() []string {
	if r == nil {
		return nil
	}
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.id
	}
	return ids
}

// Seal encrypts plaintext with the current key, bound to ad.
func (r *Ring) Seal(plaintext []byte, ad string) (string, error) {
	if r == nil || len(r.keys) == 0 {
		return "", ErrNoKey
	}
	k := r.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal with key %q: %w", k.id, err)
	}
	out := k.aead.Seal(nonce, nonce, plaintext, []byte(ad))
	return prefix + k.id + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// SealString is Seal of a string.
func (r *Ring) SealString(plaintext, ad string) (string, error) { return r.Seal([]byte(plaintext), ad) }

// Open decrypts a value Seal made with any key of the ring and the same ad.
// A value sealed with a key the ring lacks is a *KeyError with
// ErrUnknownKey; one that was changed or has other additional data, a
// *KeyError with ErrOpen.
func (r *Ring) Open(sealed, ad string) ([]byte, error) {
	id, data, err := split(sealed)
	if err != nil {
		return nil, err
	}
	if r == nil || len(r.keys) == 0 {
		return nil, ErrNoKey
	}
	for _, k := range r.keys {
		if k.id != id {
			continue
		}
		if len(data) < k.aead.NonceSize()+k.aead.Overhead() {
			return nil, &KeyError{ID: id, Err: ErrOpen}
		}
		n := k.aead.NonceSize()
		plain, err := k.aead.Open(nil, data[:n], data[n:], []byte(ad))
		if err != nil {
			return nil, &KeyError{ID: id, Err: ErrOpen}
		}
		return plain, nil
	}
	return nil, &KeyError{ID: id, Err: ErrUnknownKey}
}

// OpenString is Open returning a string.
func (r *Ring) OpenString(sealed, ad string) (string, error) {
	b, err := r.Open(sealed, ad)
	return string(b), err
}

// KeyID is the id of the key a value was sealed with.
func KeyID(sealed string) (string, error) {
	id, _, err := split(sealed)
	return id, err
}

// IsSealed reports whether s has the form of a sealed value.
func IsSealed(s string) bool {
	_, _, err := split(s)
	return err == nil
}

func split(sealed string) (string, []byte, error) {
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", nil, ErrFormat
	}
	id, b64, ok := strings.Cut(rest, ":")
	if !ok || !idPattern.MatchString(id) {
		return "", nil, ErrFormat
	}
	data, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, &KeyError{ID: id, Err: ErrOpen}
	}
	return id, data, nil
}
