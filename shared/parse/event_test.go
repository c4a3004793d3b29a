package parse_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/parse"
)

func TestDecodeBody(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Run("OKAWSEvent", func(t *testing.T) {
		b, err := parse.DecodeBody(read("aws-put-event.json"))
		if err != nil {
			t.Fatal(err)
		}
		r := b.Records[0]
		if got, want := r.Key, "coredumps/dev1/01JNJ5Y4S0G7ZB8M2K3P4Q5R6S.dmp"; got != want {
			t.Errorf("got key %q, want %q", got, want)
		}
		if got, want := r.EventTime, time.Date(2026, 3, 1, 10, 20, 30, 456e6, time.UTC); !got.Equal(want) {
			t.Errorf("got time %v, want %v", got, want)
		}
		if r.Bucket != "crashdumps-prod" || r.EventName != "ObjectCreated:Put" || r.Size != 65536 {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("OKMotoEvent", func(t *testing.T) {
		b, err := parse.DecodeBody(read("moto-put-event.json"))
		if err != nil {
			t.Fatal(err)
		}
		r := b.Records[0]
		if got, want := r.Key, "coredumps/dev1/01M8Y0SNTZDAQBEQCCV3JAA9M5.dmp"; got != want {
			t.Errorf("got key %q, want %q", got, want)
		}
		if got, want := r.EventTime, time.Date(2026, 12, 3, 13, 16, 44, 258058e3, time.UTC); !got.Equal(want) {
			t.Errorf("got time %v, want %v (no zone read as UTC)", got, want)
		}
	})
	t.Run("OKEncodedKey", func(t *testing.T) {
		b, err := parse.DecodeBody(read("moto-firmware-event.json"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := b.Records[0].Key, "firmware/ps1/1.0+beta%20x.zip"; got != want {
			t.Errorf("got key %q, want %q", got, want)
		}
		if b, _ := parse.DecodeBody([]byte(s3Event("b", "a b+c"))); b.Records[0].Key != "a b+c" {
			t.Errorf("got key %q, want %q", b.Records[0].Key, "a b+c")
		}
	})
	t.Run("OKTestEvent", func(t *testing.T) {
		for _, name := range []string{"aws-test-event.json", "moto-test-event.json"} {
			b, err := parse.DecodeBody(read(name))
			if err != nil || !b.TestEvent {
				t.Errorf("%s: got %+v, %v, want a test event", name, b, err)
			}
		}
	})
	t.Run("OKMessage", func(t *testing.T) {
		b, err := parse.DecodeBody(read("reparse-message.json"))
		if err != nil {
			t.Fatal(err)
		}
		want := parse.Message{Type: "reparse", DeviceKey: "dev1", ID: "01JNJ5Y4S0G7ZB8M2K3P4Q5R6S", Reason: "admin re-parse"}
		if *b.Message != want {
			t.Errorf("got %+v, want %+v", *b.Message, want)
		}
	})
	bad := []struct {
		name, body, want string
	}{
		{"ErrNotJSON", `nope`, "decoding body"},
		{"ErrArray", `[1]`, "decoding body"},
		{"ErrUnknown", `{"hello":"world"}`, "neither"},
		{"ErrNoRecords", `{"Records":[]}`, "no records"},
		{"ErrNotS3", `{"Records":[{"eventSource":"aws:sqs","eventName":"x","eventTime":"2026-01-01T00:00:00Z","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`, "eventSource"},
		{"ErrNoKey", `{"Records":[{"eventSource":"aws:s3","eventName":"x","eventTime":"2026-01-01T00:00:00Z","s3":{"bucket":{"name":"b"},"object":{}}}]}`, "lacks"},
		{"ErrBadEscape", `{"Records":[{"eventSource":"aws:s3","eventName":"x","eventTime":"2026-01-01T00:00:00Z","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`, "key"},
		{"ErrBadTime", `{"Records":[{"eventSource":"aws:s3","eventName":"x","eventTime":"yesterday","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`, "eventTime"},
		{"ErrMessageType", `{"type":"delete","device_key":"dev1","id":"01JNJ5Y4S0G7ZB8M2K3P4Q5R6S"}`, "message type"},
		{"ErrMessageField", `{"type":"reparse","device_key":"dev1","id":"01JNJ5Y4S0G7ZB8M2K3P4Q5R6S","extra":1}`, "unknown field"},
		{"ErrMessageID", `{"type":"reparse","device_key":"dev1","id":"../x"}`, "checking parse message"},
		{"ErrTooLarge", `{"type":"` + strings.Repeat("x", 300<<10) + `"}`, "over"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse.DecodeBody([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func FuzzDecodeBody(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, n := range names {
		b, _ := os.ReadFile(n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := parse.DecodeBody(b)
		if err != nil {
			return
		}
		n := 0
		if body.Message != nil {
			n++
		}
		if len(body.Records) > 0 {
			n++
		}
		if body.TestEvent {
			n++
		}
		if n != 1 {
			t.Errorf("got %+v, want exactly one kind of body", body)
		}
	})
}

func TestTemplate_Match(t *testing.T) {
	tests := []struct {
		name, tmpl, key, model, version string
		ok                              bool
	}{
		{"OK", parse.DefaultFirmwareZIPKey, "firmware/ps1/1.0.zip", "ps1", "1.0", true},
		{"OKPlus", parse.DefaultFirmwareZIPKey, "firmware/ps1/1.0+beta.zip", "ps1", "1.0+beta", true},
		{"OKVersionFirst", "fw/{version}/{model}-app.zip", "fw/2.1.0/ab12-app.zip", "ab12", "2.1.0", true},
		{"ErrOtherPrefix", parse.DefaultFirmwareZIPKey, "coredumps/ps1/1.0.zip", "", "", false},
		{"ErrBadModel", parse.DefaultFirmwareZIPKey, "firmware/PS1/1.0.zip", "", "", false},
		{"ErrNested", parse.DefaultFirmwareZIPKey, "firmware/ps1/x/1.0.zip", "", "", false},
		{"ErrDotIsLiteral", parse.DefaultFirmwareZIPKey, "firmware/ps1/1.0xzip", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm, err := parse.NewTemplate(tc.tmpl, true)
			if err != nil {
				t.Fatal(err)
			}
			m, v, ok := tm.Match(tc.key)
			if m != tc.model || v != tc.version || ok != tc.ok {
				t.Errorf("got %q %q %v, want %q %q %v", m, v, ok, tc.model, tc.version, tc.ok)
			}
			if ok {
				if got := tm.Expand(m, v); got != tc.key {
					t.Errorf("got expansion %q, want %q", got, tc.key)
				}
			}
		})
	}
}

func TestNewTemplate(t *testing.T) {
	for _, tc := range []struct {
		name, tmpl string
		needBoth   bool
		ok         bool
	}{
		{"OK", "firmware/{model}/{version}.zip", true, true},
		{"OKModelOnly", "{model}.elf", false, true},
		{"ErrMissingVersion", "firmware/{model}.zip", true, false},
		{"ErrTwice", "{model}/{model}/{version}.zip", true, false},
		{"ErrUnknownPlaceholder", "firmware/{chip}/{model}/{version}.zip", true, false},
		{"ErrEmpty", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse.NewTemplate(tc.tmpl, tc.needBoth)
			if (err == nil) != tc.ok {
				t.Errorf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestELFCache_Store(t *testing.T) {
	c := &parse.ELFCache{Dir: t.TempDir(), MaxBytes: 250}
	put := func(key string, n int) string {
		t.Helper()
		p, err := c.Store(key, strings.NewReader(strings.Repeat("x", n)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	put("a", 100)
	time.Sleep(10 * time.Millisecond) // distinct modification times
	put("b", 100)
	time.Sleep(10 * time.Millisecond)
	if _, _, ok := c.Lookup("a"); !ok { // a is now the most recent
		t.Fatal("got a missing, want it cached")
	}
	time.Sleep(10 * time.Millisecond)
	put("c", 100)
	for key, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, _, ok := c.Lookup(key); ok != want {
			t.Errorf("%s: got cached=%v, want %v", key, ok, want)
		}
	}
	t.Run("ErrCheck", func(t *testing.T) {
		_, err := c.Store("d", strings.NewReader("abc"), func(n int64, crc uint32) error {
			return os.ErrInvalid
		})
		if err == nil {
			t.Fatal("got nil, want the check's error")
		}
		if _, _, ok := c.Lookup("d"); ok {
			t.Error("got d cached, want nothing kept")
		}
		left, _ := filepath.Glob(filepath.Join(c.Dir, "*.tmp"))
		if len(left) != 0 {
			t.Errorf("got temporary files %v, want none", left)
		}
	})
}
