package admin_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

func TestCursors_DecodeKey(t *testing.T) {
	c := newCursors(t, secret)
	const query = "crash-groups\x00esp32\x00\x00\x00\x00\x0020"
	const key = "2026-12-03T10:00:00.000Z#0123456789abcdef0123456789abcdef"
	cur := c.EncodeKey(query, key)

	t.Run("OK", func(t *testing.T) {
		got, err := c.DecodeKey(query, cur)
		if err != nil || got != key {
			t.Errorf("got %q, %v, want %q", got, err, key)
		}
	})
	raw, _ := base64.RawURLEncoding.DecodeString(cur)
	altered := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	idCursor := c.Encode(query, crashdump.NewID(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)))
	tests := []struct {
		name, query, cursor string
	}{
		{"ErrVersionByte", query, altered(0)},
		{"ErrKeyByte", query, altered(10)},
		{"ErrMACByte", query, altered(len(raw) - 1)},
		{"ErrOtherQuery", query + "x", cur},
		{"ErrOtherSecret", query, newCursors(t, strings.Repeat("z", 32)).EncodeKey(query, key)},
		{"ErrIDCursor", query, idCursor},
		{"ErrTruncated", query, cur[:20]},
		{"ErrNotBase64", query, "!!!"},
		{"ErrTooLong", query, strings.Repeat("A", 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.DecodeKey(tt.query, tt.cursor)
			if got, want := crashdump.ErrorCode(err), crashdump.EInvalid; got != want {
				t.Errorf("got %v (%v), want %v", got, err, want)
			}
		})
	}
	t.Run("ErrKeyCursorAsID", func(t *testing.T) {
		if _, err := c.Decode(query, cur); crashdump.ErrorCode(err) != crashdump.EInvalid {
			t.Errorf("got %v, want invalid", err)
		}
	})
}
