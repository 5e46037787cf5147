package secretbox_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/intakehq/intake/pkg/secretbox"
)

func mustKey(t *testing.T, id string) string {
	t.Helper()
	k, err := secretbox.NewKeyWithID(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRing(t *testing.T, s string) *secretbox.Ring {
	t.Helper()
	r, err := secretbox.ParseRing(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealOpen(t *testing.T) {
	r := mustRing(t, mustKey(t, "k1"))
	const ad = "connections/acme/sftp.password"
	sealed, err := r.SealString("hunter2", ad)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sealed, "v1:k1:") {
		t.Errorf("sealed = %q, want the prefix v1:k1:", sealed)
	}
	if strings.Contains(sealed, "hunter2") || strings.Contains(sealed, base64.RawURLEncoding.EncodeToString([]byte("hunter2"))) {
		t.Errorf("sealed value shows the plaintext: %q", sealed)
	}
	got, err := r.OpenString(sealed, ad)
	if err != nil || got != "hunter2" {
		t.Fatalf("Open = %q, %v; want hunter2", got, err)
	}
	again, _ := r.SealString("hunter2", ad)
	if again == sealed {
		t.Error("two seals of the same plaintext are equal: the nonce is not random")
	}
	if id, err := secretbox.KeyID(sealed); err != nil || id != "k1" {
		t.Errorf("KeyID = %q, %v", id, err)
	}
	if !secretbox.IsSealed(sealed) || secretbox.IsSealed("hunter2") {
		t.Error("IsSealed is wrong")
	}
}

func TestRotation(t *testing.T) {
	k1, k2 := mustKey(t, "k1"), mustKey(t, "k2")
	old := mustRing(t, k1)
	sealed, err := old.SealString("s3cret", "jobs/a/webhook.secret")
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustRing(t, " "+k2+" , "+k1+" ")
	if got := rotated.CurrentID(); got != "k2" {
		t.Errorf("CurrentID = %q, want k2 (the first)", got)
	}
	if got := strings.Join(rotated.IDs(), ","); got != "k2,k1" {
		t.Errorf("IDs = %s", got)
	}
	got, err := rotated.OpenString(sealed, "jobs/a/webhook.secret")
	if err != nil || got != "s3cret" {
		t.Fatalf("the rotated ring does not open an old value: %q, %v", got, err)
	}
	resealed, err := rotated.SealString("s3cret", "jobs/a/webhook.secret")
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := secretbox.KeyID(resealed); id != "k2" {
		t.Errorf("a new seal uses key %q, want k2", id)
	}
	// The old ring alone cannot open what the new key sealed.
	_, err = old.Open(resealed, "jobs/a/webhook.secret")
	var ke *secretbox.KeyError
	if !errors.As(err, &ke) || ke.ID != "k2" || !errors.Is(err, secretbox.ErrUnknownKey) {
		t.Fatalf("Open with a ring lacking the key: %v, want ErrUnknownKey naming k2", err)
	}
	if !strings.Contains(err.Error(), `"k2"`) {
		t.Errorf("error %q does not name the key id", err)
	}
}

func TestTamperingAndAD(t *testing.T) {
	key := mustKey(t, "k1")
	r := mustRing(t, key)
	sealed, err := r.SealString("token-123", "connections/a/http.bearer.token")
	if err != nil {
		t.Fatal(err)
	}
	// Another row's additional data.
	if _, err := r.Open(sealed, "connections/b/http.bearer.token"); !errors.Is(err, secretbox.ErrOpen) {
		t.Errorf("Open with other additional data: %v, want ErrOpen", err)
	}
	// Flip one character of the ciphertext.
	b := []byte(sealed)
	i := len(b) - 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	_, err = r.Open(string(b), "connections/a/http.bearer.token")
	if !errors.Is(err, secretbox.ErrOpen) {
		t.Errorf("Open of a changed value: %v, want ErrOpen", err)
	}
	for _, msg := range []string{err.Error()} {
		if strings.Contains(msg, "token-123") || strings.Contains(msg, strings.SplitN(key, ":", 2)[1]) {
			t.Errorf("error shows a secret: %s", msg)
		}
	}
	// A truncated value.
	if _, err := r.Open("v1:k1:AAAA", "x"); !errors.Is(err, secretbox.ErrOpen) {
		t.Errorf("Open of a short value: %v, want ErrOpen", err)
	}
	if _, err := r.Open("plain text", "x"); !errors.Is(err, secretbox.ErrFormat) {
		t.Errorf("Open of plain text: %v, want ErrFormat", err)
	}
}

func TestNilRing(t *testing.T) {
	var r *secretbox.Ring
	if _, err := r.SealString("x", "ad"); !errors.Is(err, secretbox.ErrNoKey) {
		t.Errorf("Seal: %v, want ErrNoKey", err)
	}
	sealed, _ := mustRing(t, mustKey(t, "k1")).SealString("x", "ad")
	if _, err := r.Open(sealed, "ad"); !errors.Is(err, secretbox.ErrNoKey) {
		t.Errorf("Open: %v, want ErrNoKey", err)
	}
	if r.CurrentID() != "" || r.IDs() != nil {
		t.Error("a nil ring has keys")
	}
}

func TestParseRingErrors(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	short := base64.StdEncoding.EncodeToString([]byte("short-key-material"))
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"k1", "entry 1 is not id:base64"},
		{"k1:" + secret + ",", "entry 2 is empty"},
		{"k 1:" + secret, `"k 1" is not a key id`},
		{"k1:" + secret + ",k1:" + secret, `key id "k1" appears twice`},
		{"k1:!!!notbase64", `key "k1" is not base64`},
		{"k1:" + short, `key "k1" is 18 bytes, want 32`},
	} {
		_, err := secretbox.ParseRing(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRing(%q) = %v, want an error containing %q", tc.in, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), short) {
			t.Errorf("ParseRing error shows the key: %v", err)
		}
	}
	// URL and unpadded base64 are accepted.
	raw := []byte("0123456789abcdef0123456789abcdef")
	if _, err := secretbox.ParseRing("a:" + base64.RawURLEncoding.EncodeToString(raw)); err != nil {
		t.Errorf("unpadded URL base64: %v", err)
	}
}

func TestNewKey(t *testing.T) {
	k, err := secretbox.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k, "k20") {
		t.Errorf("NewKey = id %q, want k<date>", strings.SplitN(k, ":", 2)[0])
	}
	r := mustRing(t, k)
	s, err := r.SealString("x", "ad")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.OpenString(s, "ad"); err != nil || got != "x" {
		t.Errorf("round trip with a new key: %q, %v", got, err)
	}
	if _, err := secretbox.NewKeyWithID("bad id"); err == nil {
		t.Error("NewKeyWithID accepted a bad id")
	}
}
