package checkpoint

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/model"
)

func tinyState(t *testing.T, step int) *State {
	t.Helper()
	cfg := model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 1}
	r := rand.New(rand.NewPCG(uint64(step), 1))
	w, err := model.Init(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	s := &State{Model: cfg, Dataset: "mnist", Sigmas: []float64{1, 0.1}, Train: []byte(`{"batch":4}`), Step: step, AdamT: step,
		Weights: w, EMA: w.Clone(), RNG: []byte{1, 2, 3}}
	for i, p := range w {
		s.EMA[i].Data[0] += 1
		m, v := make([]float32, len(p.Data)), make([]float32, len(p.Data))
		m[0], v[len(v)-1] = float32(i), float32(2*i)
		s.M, s.V = append(s.M, m), append(s.V, v)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := tinyState(t, 7)
	var b bytes.Buffer
	if err := Encode(&b, s); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatal("decoded state differs")
	}
}

func encoded(t *testing.T) []byte {
	var b bytes.Buffer
	if err := Encode(&b, tinyState(t, 3)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCorrupt: every damaged file is an ErrCorrupt that names the file.
func TestCorrupt(t *testing.T) {
	good := encoded(t)
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 0x40
		return b
	}
	other := tinyState(t, 3)
	other.Model.Base = 8 // header says base 8, tensors are base 4
	var ob bytes.Buffer
	Encode(&ob, other)
	ver := append([]byte(nil), good...)
	ver[8] = 9
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"magic", append([]byte("PNG\x00\x00\x00\x00\x00"), good[8:]...), "bad magic"},
		{"version", ver, "format version 9"},
		{"truncated-half", good[:len(good)/2], "checksum"},
		{"truncated-end", good[:len(good)-1], "checksum"},
		{"flipped-header", flip(30), "checksum"},
		{"flipped-data", flip(len(good) - 100), "checksum"},
		{"trailing", append(append([]byte(nil), good...), 0), "checksum"},
		{"other-architecture", ob.Bytes(), "architecture"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), tc.name+".ckpt")
			os.WriteFile(p, tc.data, 0o644)
			_, err := Load(p)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q should name %s and say %q", err, p, tc.want)
			}
		})
	}
}

func TestSaveLatestKeep(t *testing.T) {
	dir := t.TempDir()
	if _, err := Latest(dir); !errors.Is(err, ErrNone) {
		t.Fatalf("empty folder: %v", err)
	}
	for _, step := range []int{10, 20, 30, 40} {
		if _, err := Save(dir, tinyState(t, step), 2); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := List(dir)
	if len(all) != 2 || filepath.Base(all[0]) != FileName(30) || filepath.Base(all[1]) != FileName(40) {
		t.Fatalf("kept %v", all)
	}
	p, err := Latest(dir)
	if err != nil || filepath.Base(p) != FileName(40) {
		t.Fatalf("latest %q %v", p, err)
	}
	if r, err := Resolve(dir); err != nil || r != p {
		t.Fatalf("resolve dir: %q %v", r, err)
	}
	s, err := Load(p)
	if err != nil || s.Step != 40 {
		t.Fatalf("load latest: %v", err)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("left %s", e.Name())
		}
	}
	os.WriteFile(filepath.Join(dir, "latest"), []byte("../../etc/passwd\n"), 0o644)
	if _, err := Latest(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad pointer: %v", err)
	}
}
