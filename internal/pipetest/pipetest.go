//go:build unix

// Package pipetest checks, for tests, that readers of user-named files
// refuse a named pipe at once: a reader that opens one waits for a writer
// for ever.
package pipetest

import (
	"syscall"
	"testing"
	"time"
)

// Make makes a named pipe at path and returns path; t is skipped where the
// system makes none.
func Make(t testing.TB, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skip("no named pipes here:", err)
	}
	return path
}

// Limit is how long a reader may take to refuse the pipe.
const Limit = 5 * time.Second

// Refused runs each reader, which returns whether it refused the pipe, and
// fails t where one took it for a file or had not returned within Limit.
func Refused(t testing.TB, readers map[string]func() bool) {
	t.Helper()
	for name, read := range readers {
		done := make(chan bool, 1)
		go func() { done <- read() }()
		select {
		case ok := <-done:
			if !ok {
				t.Errorf("%s: the pipe was taken for a file", name)
			}
		case <-time.After(Limit):
			t.Fatalf("%s: still reading the pipe after %v", name, Limit)
		}
	}
}
