package crashdump

import (
	"crypto/rand"
	"encoding/binary"
	"regexp"
	"time"
)

// crockford is Crockford's base-32 alphabet: ids sort as their bytes do.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a 26-character id whose first 10 characters encode t in
// milliseconds and whose remaining 16 are random, so ids are unique and
// sort by upload time.
func NewID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	rand.Read(b[6:])
	// 128 bits as 26 base-32 digits, most significant first.
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

var idRE = regexp.MustCompile(`^[0-7][0-9A-HJKMNP-TV-Z]{25}$`)

// ValidateID checks that id has the shape NewID produces.
func ValidateID(id string) error {
	if !idRE.MatchString(id) {
		return Errorf(ENotFound, "no such coredump")
	}
	return nil
}

// IDTime returns the upload time encoded in a valid id.
func IDTime(id string) time.Time {
	var ms uint64
	for i := 0; i < 10; i++ {
		for j := 0; j < len(crockford); j++ {
			if crockford[j] == id[i] {
				ms = ms<<5 | uint64(j)
			}
		}
	}
	// 10 digits hold 50 bits; the top 2 belong to nothing (always 0 for
	// a 48-bit time).
	return time.UnixMilli(int64(ms))
}

// MinID returns the smallest id that t could produce, for range queries.
func MinID(t time.Time) string {
	id := NewID(t)
	return id[:10] + "0000000000000000"
}

// MaxID returns the largest id that t could produce, for range queries.
func MaxID(t time.Time) string {
	id := NewID(t)
	return id[:10] + "ZZZZZZZZZZZZZZZZ"
}
