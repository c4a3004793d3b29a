package config_test

import (
	"strings"
	"testing"

	"github.com/espfleet/crashdumps/shared/config"
)

func adminVars(kv ...string) config.Lookup {
	vars := map[string]string{
		"COREDUMP_BUCKET": "bucket",
		"COREDUMP_TABLE":  "table",
		"CURSOR_SECRET":   strings.Repeat("s", 32),
		"PARSE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/parse",
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(vars, kv[i])
		} else {
			vars[kv[i]] = kv[i+1]
		}
	}
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestLoadAdmin(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		c, err := config.LoadAdmin(adminVars())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.Scope, "coredumps/admin"; got != want {
			t.Errorf("scope: got %q, want %q", got, want)
		}
		if got, want := len(c.CursorSecret), 32; got != want {
			t.Errorf("secret: got %d bytes, want %d", got, want)
		}
	})
	t.Run("OKScope", func(t *testing.T) {
		c, err := config.LoadAdmin(adminVars("ADMIN_SCOPE", "fleet/admin"))
		if err != nil || c.Scope != "fleet/admin" {
			t.Errorf("got %q, %v, want fleet/admin", c.Scope, err)
		}
	})
	for _, tt := range []struct {
		name, variable string
		vars           config.Lookup
	}{
		{"ErrNoSecret", "CURSOR_SECRET", adminVars("CURSOR_SECRET", "")},
		{"ErrShortSecret", "CURSOR_SECRET", adminVars("CURSOR_SECRET", "short")},
		{"ErrNoQueue", "PARSE_QUEUE_URL", adminVars("PARSE_QUEUE_URL", "")},
		{"ErrQueueNotURL", "PARSE_QUEUE_URL", adminVars("PARSE_QUEUE_URL", "parse-queue")},
		{"ErrNoTable", "COREDUMP_TABLE", adminVars("COREDUMP_TABLE", "")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.LoadAdmin(tt.vars)
			if err == nil || !strings.Contains(err.Error(), tt.variable) {
				t.Errorf("got %v, want an error naming %s", err, tt.variable)
			}
		})
	}
}
