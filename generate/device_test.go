package generate

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/internal/cuda"
)

// TestPickDevice: -device cpu is the CPU; an unknown name is an error;
// without the gpu tag -device cuda says how to build, and the default stays
// on the CPU silently; with the tag and no GPU the default says why it runs
// on the CPU and -device cuda fails with the reason.
func TestPickDevice(t *testing.T) {
	var log bytes.Buffer
	if d, err := pickDevice("cpu", &log); d != nil || err != nil {
		t.Fatalf("cpu: %v %v", d, err)
	}
	if _, err := pickDevice("tpu", &log); !errors.Is(err, ErrConfig) {
		t.Fatalf("tpu: %v", err)
	}
	d, err := pickDevice("cuda", &log)
	if d != nil {
		d.Close()
		t.Skip("a GPU is here: the fallbacks are not exercised")
	}
	if !cuda.Built {
		if err == nil || !strings.Contains(err.Error(), "-tags gpu") {
			t.Fatalf("cuda without the tag: %v", err)
		}
		if d, err := pickDevice("", &log); d != nil || err != nil || log.Len() != 0 {
			t.Fatalf("default without the tag: %v %v %q", d, err, log.String())
		}
		return
	}
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("cuda without a GPU: %v", err)
	}
	if d, err := pickDevice("", &log); d != nil || err != nil || !strings.Contains(log.String(), "running on the CPU") {
		t.Fatalf("default without a GPU: %v %v %q", d, err, log.String())
	}
}
