// Package lambdatest proves that a function's deployed artifact starts and
// answers: it builds the function's bootstrap binary as `sam build` does
// (linux, the lambda.norpc tag) for this machine's architecture, and runs it
// under the AWS Lambda Runtime Interface Emulator, which needs no Docker.
// The emulator is built from the version pinned by go.mod's tool directive.
package lambdatest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/awstest"
)

// riePackage is the emulator's main package, pinned in go.mod.
const riePackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

var builds sync.Map // package path → *build

type build struct {
	once sync.Once
	path string
	err  error
}

// Build compiles the main package pkg (a path relative to the test's
// directory, such as ".") into a bootstrap binary and returns its path.
// Each package is built once per test process.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := tempDir("bootstrap")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", b.path, pkg)
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building bootstrap of %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// RIE is a running Runtime Interface Emulator with one function.
type RIE struct {
	// URL is the emulator's invoke endpoint.
	URL  string
	logs *awstest.Buffer
}

// Start runs bootstrap under the emulator with env added to this process's
// environment, and stops it when the test ends.
func Start(t testing.TB, bootstrap string, env map[string]string) *RIE {
	t.Helper()
	dir := t.TempDir()
	rieBin := buildRIE(t)
	invokeAddr, apiAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(rieBin,
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", apiAddr,
		bootstrap)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	r := &RIE{URL: "http://" + invokeAddr + "/2015-03-31/functions/function/invocations", logs: &awstest.Buffer{}}
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the emulator: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("emulator and function output:\n%s", r.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", invokeAddr)
		if err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator did not listen on %s:\n%s", invokeAddr, r.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Invoke sends one event and returns the function's response payload.
func (r *RIE) Invoke(t testing.TB, event []byte) []byte {
	t.Helper()
	resp, err := http.Post(r.URL, "application/json", bytes.NewReader(event))
	if err != nil {
		t.Fatalf("invoking: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("invoke status %d: %s", resp.StatusCode, b)
	}
	return b
}

var temps struct {
	mu   sync.Mutex
	dirs []string
}

// tempDir makes a folder that outlives single tests, for binaries that
// several tests share; Cleanup removes it.
func tempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err == nil {
		temps.mu.Lock()
		temps.dirs = append(temps.dirs, dir)
		temps.mu.Unlock()
	}
	return dir, err
}

// Cleanup removes the binaries built for the test process. Pass it to
// awstest.Main.
func Cleanup() {
	temps.mu.Lock()
	defer temps.mu.Unlock()
	for _, d := range temps.dirs {
		os.RemoveAll(d)
	}
	temps.dirs = nil
}

var rie struct {
	once sync.Once
	path string
	err  error
}

// buildRIE builds the emulator once per test process.
func buildRIE(t testing.TB) string {
	t.Helper()
	rie.once.Do(func() {
		dir, err := tempDir("aws-lambda-rie")
		if err != nil {
			rie.err = err
			return
		}
		rie.path = filepath.Join(dir, "aws-lambda-rie")
		if b, err := exec.Command("go", "build", "-o", rie.path, riePackage).CombinedOutput(); err != nil {
			rie.err = fmt.Errorf("building the runtime interface emulator: %v\n%s", err, b)
		}
	})
	if rie.err != nil {
		t.Fatal(rie.err)
	}
	return rie.path
}

// Logs returns what the emulator and the function printed so far.
func (r *RIE) Logs() string { return r.logs.String() }

// WaitForLog waits up to 10 seconds for the output to hold want, since the
// function's output reaches the test after the emulator's answer.
func (r *RIE) WaitForLog(t testing.TB, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.Logs(), want) {
		if time.Now().After(deadline) {
			t.Errorf("output lacks %q:\n%s", want, r.Logs())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Env returns the emulator endpoint and credentials for a function process.
func Env(extra map[string]string) map[string]string {
	env := map[string]string{}
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		env[k] = os.Getenv(k)
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}
