package config

import "github.com/espfleet/crashdumps/shared/admin"

// DefaultAdminScope is the scope an admin token must hold unless
// ADMIN_SCOPE names another.
const DefaultAdminScope = "coredumps/admin"

// Admin is the admin function's configuration.
type Admin struct {
	Common
	Scope        string // ADMIN_SCOPE
	CursorSecret []byte // CURSOR_SECRET, signs listing cursors
	QueueURL     string // PARSE_QUEUE_URL, for re-parse requests
}

// LoadAdmin reads and checks the admin function's configuration.
func LoadAdmin(lookup Lookup) (Admin, error) {
	r := NewReader(lookup)
	c := Admin{
		Common:       r.common(),
		Scope:        r.String("ADMIN_SCOPE", DefaultAdminScope),
		CursorSecret: []byte(r.Required("CURSOR_SECRET")),
	}
	if n := len(c.CursorSecret); n > 0 && n < admin.MinCursorSecret {
		r.fail("CURSOR_SECRET", "must be at least %d bytes, not %d", admin.MinCursorSecret, n)
	}
	r.Required("PARSE_QUEUE_URL")
	c.QueueURL = r.URL("PARSE_QUEUE_URL")
	return c, r.Err()
}
