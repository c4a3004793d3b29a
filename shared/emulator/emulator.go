// Package emulator runs the AWS emulator that the local stack and the
// integration tests talk to: moto server, started on a free loopback port
// when AWS_ENDPOINT_URL does not already name one (LocalStack, or a moto
// server the user runs).
package emulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Server is a moto server this process started.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:<port>.
	URL  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// Command is the moto server executable; MOTO_SERVER overrides it.
func Command() string {
	if c := os.Getenv("MOTO_SERVER"); c != "" {
		return c
	}
	return "moto_server"
}

// Start starts moto server on a free loopback port and waits until it
// answers.
func Start(ctx context.Context) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), port: port}
	return s, s.start(ctx)
}

func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(Command(), "-H", "127.0.0.1", "-p", strconv.Itoa(s.port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s (install moto with `pip install 'moto[server]'`, or set AWS_ENDPOINT_URL): %w", Command(), err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited before answering on %s", Command(), s.URL)
		case <-ctx.Done():
			s.Stop()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return errors.New("moto server did not answer within 60s")
		}
	}
}

// Stop ends the server and everything it started.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port after Stop. The
// emulator's state is lost, as an outage of a real service would not do;
// tests that inject an outage create their resources again.
func (s *Server) Restart(ctx context.Context) error {
	s.Stop()
	return s.start(ctx)
}

// Reset drops every resource in the emulator.
func (s *Server) Reset() error {
	resp, err := http.Post(s.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		return fmt.Errorf("resetting moto: %w", err)
	}
	resp.Body.Close()
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Setup points the AWS SDK at an emulator for the rest of the process: the
// one AWS_ENDPOINT_URL names, or a moto server started here. It fills in
// a region and dummy credentials where none are set, since emulators accept
// any. The returned stop function ends a server started here; the Server is
// nil when an existing endpoint is used.
func Setup(ctx context.Context) (*Server, func(), error) {
	for k, v := range map[string]string{
		"AWS_REGION":            "us-east-1",
		"AWS_ACCESS_KEY_ID":     "test",
		"AWS_SECRET_ACCESS_KEY": "test",
	} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	if os.Getenv("AWS_ENDPOINT_URL") != "" {
		return nil, func() {}, nil
	}
	s, err := Start(ctx)
	if err != nil {
		return nil, nil, err
	}
	os.Setenv("AWS_ENDPOINT_URL", s.URL)
	return s, func() { s.Stop(); os.Unsetenv("AWS_ENDPOINT_URL") }, nil
}
