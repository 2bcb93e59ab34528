package train

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
)

// TestResumeHostileTrainConfig: a checkpoint (valid checksum) whose saved
// training configuration holds values Config.Validate refuses is refused,
// with an error naming the file (most were resumed silently).
func TestResumeHostileTrainConfig(t *testing.T) {
	for _, edit := range []map[string]any{
		{"batch": -1},
		{"batch": 0},
		{"ema_decay": 7},
		{"lr": -1},
		{"levels": -3},
		{"lr_decay": "bogus"},
		{"lr_warmup": -5},
		{"lr_warmup": 1000000},
		{"guide_at": 5},
		{"guide_at": -1},
		{"max_grad_norm": -1},
		{"sigma_dist": "bogus"},
	} {
		dir := t.TempDir()
		cfg := tinyConfig(dir)
		cfg.Steps = 3
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		p, err := checkpoint.Latest(dir)
		if err != nil {
			t.Fatal(err)
		}
		st, err := checkpoint.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(st.Train, &m)
		for k, v := range edit {
			m[k] = v
		}
		st.Train, _ = json.Marshal(m)
		if _, err := checkpoint.Save(dir, st); err != nil {
			t.Fatal(err)
		}
		cfg.Steps = 6
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%v: panic: %v", edit, r)
				}
			}()
			_, err = Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("resuming with %v in the checkpoint's training configuration: %v (want an error naming %s)", edit, err, p)
			}
		}()
	}
}
