package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// Cursors over other positions than dump ids, such as the crash groups'
// (last seen time and signature), use their own version byte: a cursor of
// one kind never decodes as the other.
const (
	keyCursorVersion = 2
	// MaxCursorKey is the longest position EncodeKey takes.
	MaxCursorKey     = 256
	maxKeyCursorText = (1+MaxCursorKey+macLen)*4/3 + 4
)

// EncodeKey returns the cursor that resumes query after the position key,
// signed like Encode's. Keys longer than MaxCursorKey are not decoded.
func (c *Cursors) EncodeKey(query, key string) string {
	b := make([]byte, 0, 1+len(key)+macLen)
	b = append(b, keyCursorVersion)
	b = append(b, key...)
	b = append(b, c.keyMAC(query, key)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeKey checks that cursor was made by EncodeKey for query and returns
// the position it resumes after. Anything else is an invalid request; the
// caller still checks the position's form before using it.
func (c *Cursors) DecodeKey(query, cursor string) (string, error) {
	bad := crashdump.Errorf(crashdump.EInvalid, "cursor is not valid for this query; start again without it")
	if len(cursor) > maxKeyCursorText {
		return "", bad
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 1+macLen || len(b) > 1+MaxCursorKey+macLen || b[0] != keyCursorVersion {
		return "", bad
	}
	key := string(b[1 : len(b)-macLen])
	if !hmac.Equal(b[len(b)-macLen:], c.keyMAC(query, key)) {
		return "", bad
	}
	return key, nil
}

func (c *Cursors) keyMAC(query, key string) []byte {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte{keyCursorVersion})
	h.Write([]byte(query))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return h.Sum(nil)
}
