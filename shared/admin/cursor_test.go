package admin_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/admin"
	"github.com/espfleet/crashdumps/shared/crashdump"
)

func newCursors(t testing.TB, secret string) *admin.Cursors {
	t.Helper()
	c, err := admin.NewCursors([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const secret = "0123456789abcdef0123456789abcdef"

func TestCursors_Decode(t *testing.T) {
	c := newCursors(t, secret)
	id := crashdump.NewID(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	cur := c.Encode("device\x00abcd1234\x00\x0020", id)

	t.Run("OK", func(t *testing.T) {
		got, err := c.Decode("device\x00abcd1234\x00\x0020", cur)
		if err != nil || got != id {
			t.Errorf("got %q, %v, want %q", got, err, id)
		}
	})
	raw, _ := base64.RawURLEncoding.DecodeString(cur)
	altered := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	forged := func() string {
		// The position of another dump with the MAC left as it was.
		b := append([]byte(nil), raw...)
		copy(b[1:], crashdump.NewID(time.Now()))
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name, query, cursor string
		keys                *admin.Cursors
	}{
		{"ErrOtherQuery", "device\x00other9\x00\x0020", cur, c},
		{"ErrOtherLimit", "device\x00abcd1234\x00\x0021", cur, c},
		{"ErrOtherKey", "device\x00abcd1234\x00\x0020", cur, newCursors(t, secret+"x")},
		{"ErrVersion", "device\x00abcd1234\x00\x0020", altered(0), c},
		{"ErrPosition", "device\x00abcd1234\x00\x0020", altered(5), c},
		{"ErrMAC", "device\x00abcd1234\x00\x0020", altered(len(raw) - 1), c},
		{"ErrForged", "device\x00abcd1234\x00\x0020", forged(), c},
		{"ErrShort", "device\x00abcd1234\x00\x0020", cur[:len(cur)-1], c},
		{"ErrLong", "device\x00abcd1234\x00\x0020", cur + "AA", c},
		{"ErrPadding", "device\x00abcd1234\x00\x0020", cur + "=", c},
		{"ErrNotBase64", "device\x00abcd1234\x00\x0020", "!!!!", c},
		{"ErrEmpty", "device\x00abcd1234\x00\x0020", "", c},
		{"ErrHuge", "device\x00abcd1234\x00\x0020", strings.Repeat("A", 1<<20), c},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.keys.Decode(tt.query, tt.cursor)
			if got, want := crashdump.ErrorCode(err), crashdump.EInvalid; got != want {
				t.Errorf("code: got %q (%v), want %q", got, err, want)
			}
		})
	}
}

func TestNewCursors_ErrShortSecret(t *testing.T) {
	if _, err := admin.NewCursors([]byte("too short")); err == nil {
		t.Errorf("got no error for a 9-byte secret")
	}
}

func FuzzCursors_Decode(f *testing.F) {
	c := newCursors(f, secret)
	f.Add(c.Encode("q", crashdump.NewID(time.Now())))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, cursor string) {
		id, err := c.Decode("q", cursor)
		if err == nil && crashdump.ValidateID(id) != nil {
			t.Errorf("accepted a cursor with position %q", id)
		}
		if err != nil && crashdump.ErrorCode(err) != crashdump.EInvalid {
			t.Errorf("code: got %q, want invalid", crashdump.ErrorCode(err))
		}
	})
}

func BenchmarkCursors_Decode(b *testing.B) {
	c := newCursors(b, secret)
	query := "fleet\x00PARSED\x00esp32c3\x00\x00\x00\x00\x0020"
	cur := c.Encode(query, crashdump.NewID(time.Now()))
	for b.Loop() {
		if _, err := c.Decode(query, cur); err != nil {
			b.Fatal(err)
		}
	}
}
