package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// Cursors signs and checks the cursors of listings. A cursor carries the
// id of the last dump a page returned and an HMAC-SHA256 over that id and
// the query that produced it (the device or the filters, and the limit),
// so a client cannot forge a position or move a cursor to another query.
// The id is not hidden, only protected: clients must treat the cursor as
// opaque all the same, since its format may change with its version byte.
type Cursors struct {
	key []byte
}

// MinCursorSecret is the shortest secret NewCursors accepts, in bytes.
const MinCursorSecret = 32

// NewCursors returns Cursors keyed by secret.
func NewCursors(secret []byte) (*Cursors, error) {
	if len(secret) < MinCursorSecret {
		return nil, errors.New("the cursor secret must be at least 32 bytes")
	}
	return &Cursors{key: append([]byte(nil), secret...)}, nil
}

const (
	cursorVersion = 1
	idLen         = 26
	macLen        = sha256.Size
	cursorLen     = 1 + idLen + macLen
	// maxCursorText bounds what is decoded at all.
	maxCursorText = 128
)

// Encode returns the cursor that resumes query after the dump id after.
func (c *Cursors) Encode(query, after string) string {
	b := make([]byte, 0, cursorLen)
	b = append(b, cursorVersion)
	b = append(b, after...)
	b = append(b, c.mac(query, after)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode checks that cursor was made by Encode for query and returns the
// id it resumes after. Anything else, a cursor altered in any byte or made
// for another query, is an invalid request.
func (c *Cursors) Decode(query, cursor string) (string, error) {
	bad := crashdump.Errorf(crashdump.EInvalid, "cursor is not valid for this query; start again without it")
	if len(cursor) > maxCursorText {
		return "", bad
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) != cursorLen || b[0] != cursorVersion {
		return "", bad
	}
	after := string(b[1 : 1+idLen])
	if !hmac.Equal(b[1+idLen:], c.mac(query, after)) {
		return "", bad
	}
	// Only this service signs, and only ids it listed; checked anyway,
	// since the id goes into a key expression.
	if crashdump.ValidateID(after) != nil {
		return "", bad
	}
	return after, nil
}

func (c *Cursors) mac(query, after string) []byte {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte{cursorVersion})
	h.Write([]byte(query))
	h.Write([]byte{0})
	h.Write([]byte(after))
	return h.Sum(nil)
}
