package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/config"
)

func retentionEnv(vars map[string]string) config.Lookup {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestLoadRetention(t *testing.T) {
	base := func() map[string]string {
		return map[string]string{
			"COREDUMP_BUCKET": "b", "COREDUMP_TABLE": "t",
			"PARSE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/parse",
		}
	}
	t.Run("OK", func(t *testing.T) {
		c, err := config.LoadRetention(retentionEnv(base()))
		if err != nil {
			t.Fatal(err)
		}
		r := c.Rules()
		if got, want := r.MaxAge, 90*24*time.Hour; got != want {
			t.Errorf("max age: got %v, want %v", got, want)
		}
		if r.MaxPerDevice != 20 || r.OrphanObjectAge != time.Hour || r.UploadGrace != 15*time.Minute ||
			r.StuckPendingAfter != 30*time.Minute || r.MaxRequeues != 3 {
			t.Errorf("rules: got %+v, want the documented defaults", r)
		}
		if c.Scope != config.DefaultAdminScope || c.MaxChain != 10 || c.HTTPBudget != 25*time.Second {
			t.Errorf("got scope %q, max chain %d, HTTP budget %v", c.Scope, c.MaxChain, c.HTTPBudget)
		}
	})
	t.Run("OKAgeOff", func(t *testing.T) {
		v := base()
		v["MAX_COREDUMP_AGE_DAYS"] = "0"
		c, err := config.LoadRetention(retentionEnv(v))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Rules().MaxAge; got != 0 {
			t.Errorf("max age: got %v, want 0 (off)", got)
		}
	})
	errs := []struct {
		name, key, value string
	}{
		{"ErrNoQueue", "PARSE_QUEUE_URL", ""},
		{"ErrBadQueue", "PARSE_QUEUE_URL", "sqs://nope"},
		{"ErrBadGrace", "UPLOAD_GRACE", "soon"},
		{"ErrBadRequeues", "MAX_PARSE_REQUEUES", "-1"},
		{"ErrBudgetOverGateway", "HTTP_SWEEP_BUDGET", "45s"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			v := base()
			v[tt.key] = tt.value
			_, err := config.LoadRetention(retentionEnv(v))
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("got %v, want an error naming %s", err, tt.key)
			}
		})
	}
}
