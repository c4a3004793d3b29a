package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// startStack runs the local stack against the test emulator with fresh
// resource names and development tokens signed by key.
func startStack(t *testing.T, key *rsa.PrivateKey, env map[string]string) *Stack {
	t.Helper()
	suffix := awstest.Suffix()
	settings := map[string]string{
		"COREDUMP_BUCKET":  "local-" + suffix,
		"COREDUMP_TABLE":   "local-" + suffix,
		"PARSE_QUEUE_NAME": "parse-" + suffix,
		"PARSE_DLQ_NAME":   "dlq-" + suffix,
	}
	for k, v := range env {
		settings[k] = v
	}
	s := &Stack{
		Addr:         "127.0.0.1:0",
		TemplateFile: "../template.yaml",
		Verifier:     DevVerifier(key),
		Lookup: func(name string) (string, bool) {
			v, ok := settings[name]
			return v, ok
		},
		Out:    io.Discard,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func post(t *testing.T, url, token string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestStack_Upload(t *testing.T) {
	key := testKey(t)
	s := startStack(t, key, nil)
	url := s.URL + "/iot/coredump?chip=esp32c3&firmware_version=1.0.0"
	device, err := DevToken(key, "iotdevice-ps1-abcd1234", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := DevToken(key, "iotdevice-ps1-abcd1234", "", -time.Hour)
	other, _ := DevToken(testKey(t), "iotdevice-ps1-abcd1234", "", time.Hour)

	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"OK", device, 201},
		{"ErrNoToken", "", 401},
		{"ErrExpired", expired, 401},
		{"ErrOtherSigner", other, 401},
		{"ErrGarbage", "not.a.jwt", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, body := post(t, url, tt.token, []byte("dump of "+tt.name))
			if got != tt.status {
				t.Errorf("status: got %d, want %d (%v)", got, tt.status, body)
			}
		})
	}
}

func TestStack_NoRoute(t *testing.T) {
	key := testKey(t)
	s := startStack(t, key, nil)
	tok, _ := DevToken(key, "iotdevice-ps1-abcd1234", "", time.Hour)
	if got, _ := post(t, s.URL+"/nothing/here", tok, nil); got != 404 {
		t.Errorf("status: got %d, want 404", got)
	}
}

// TestStack_SettingsFromEnvironment shows a function reads a setting
// given to the stack over the template's default, as in a deployment.
func TestStack_SettingsFromEnvironment(t *testing.T) {
	key := testKey(t)
	s := startStack(t, key, map[string]string{"MAX_COREDUMP_BYTES": "8"})
	tok, _ := DevToken(key, "iotdevice-ps1-abcd1234", "", time.Hour)
	got, body := post(t, s.URL+"/iot/coredump?chip=esp32&firmware_version=1", tok, []byte("nine bytes"))
	if got != 413 {
		t.Errorf("status: got %d, want 413 (%v)", got, body)
	}
}

func TestLoadTemplate_OK(t *testing.T) {
	tmpl, err := LoadTemplate("../template.yaml", map[string]string{"CoredumpBucket": "b", "CoredumpTable": "t"})
	if err != nil {
		t.Fatal(err)
	}
	var upload *Function
	for _, f := range tmpl.Functions {
		if f.Dir == "functions/upload" {
			upload = f
		}
		if _, err := os.Stat("../" + f.Dir + "/main.go"); err != nil {
			t.Errorf("function %s: CodeUri %s has no main.go", f.Name, f.Dir)
		}
	}
	if upload == nil {
		t.Fatal("no upload function in template.yaml")
	}
	if got, want := upload.Env["COREDUMP_BUCKET"], "b"; got != want {
		t.Errorf("COREDUMP_BUCKET: got %q, want %q", got, want)
	}
	if got, want := upload.Env["MAX_COREDUMP_BYTES"], "1048576"; got != want {
		t.Errorf("MAX_COREDUMP_BYTES: got %q, want %q", got, want)
	}
	if len(upload.Routes) != 1 || upload.Routes[0].Method != "POST" || upload.Routes[0].Path != "/iot/coredump" {
		t.Errorf("routes: got %+v", upload.Routes)
	}
}

func TestToken_Command(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"token", "-keys", dir, "-admin"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	k, err := devKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	claims, scopes, err := DevVerifier(k).Claims(context.Background(), string(bytes.TrimSpace(out.Bytes())))
	if err != nil {
		t.Fatalf("verifying the printed token: %v", err)
	}
	if len(scopes) != 1 || scopes[0] != "coredumps/admin" {
		t.Errorf("scopes: got %v, want [coredumps/admin]", scopes)
	}
	if claims["iss"] != DevIssuer {
		t.Errorf("iss: got %q", claims["iss"])
	}
	if err := run(context.Background(), []string{"token", "-keys", dir}, &out, &errOut); err == nil {
		t.Errorf("token without -device or -admin: got no error")
	}
}
