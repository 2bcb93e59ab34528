package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/model"
)

// FuzzDecode: Decode returns a state or an error, never panics, and never
// allocates beyond what the input's length justifies. Most random bytes fail
// the checksum, so the target also seals the input with a valid checksum,
// which sends the fuzzer's bytes through the header and tensor parsing.
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 5m ./checkpoint
func FuzzDecode(f *testing.F) {
	// The smallest network: a seed of a few kilobytes keeps the fuzzer fast.
	st := tinyState(f, 3)
	st.Model = model.Config{Channels: 1, Height: 2, Width: 2, Base: 1, Mult: []int{1}, EmbDim: 2}
	w, err := model.Init(st.Model, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		f.Fatal(err)
	}
	st.Weights, st.EMA, st.M, st.V = w, w.Clone(), nil, nil
	for _, p := range w {
		st.M, st.V = append(st.M, make([]float32, len(p.Data))), append(st.V, make([]float32, len(p.Data)))
	}
	var good bytes.Buffer
	if err := Encode(&good, st); err != nil {
		f.Fatal(err)
	}
	g := good.Bytes()
	guided := *st // version 2: the same with a guide of its own
	guided.Guide, guided.GuideStep, guided.SampleAutoguide = w.Clone(), 2, 2
	var gb bytes.Buffer
	if err := Encode(&gb, &guided); err != nil {
		f.Fatal(err)
	}
	f.Add(gb.Bytes())
	f.Add(g)
	f.Add(g[:len(g)/2])
	f.Add(g[:20])
	f.Add([]byte("NCSNCKPT"))
	f.Add(append([]byte("NCSNCKPT\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"), make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, seal(b)} {
			s, err := Decode(bytes.NewReader(in))
			if err == nil {
				if s == nil || len(s.Weights) == 0 || len(s.Sigmas) == 0 {
					t.Fatalf("no error and an unusable state %+v", s)
				}
				// Whatever decodes encodes again.
				var out bytes.Buffer
				if err := Encode(&out, s); err != nil && !errors.Is(err, ErrNonFinite) {
					t.Fatalf("re-encoding a decoded state: %v", err)
				}
				continue
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewer) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrNewer", err)
			}
		}
	})
}

// seal puts the magic and a version this code reads (b's own where it is
// one) in front of b when it is long enough, and a valid SHA-256 trailer
// after it.
func seal(b []byte) []byte {
	out := append([]byte(nil), b...)
	if len(out) >= 12 {
		copy(out, magic[:])
		if v := binary.LittleEndian.Uint32(out[8:12]); v < versionNoGuide || v > Version {
			binary.LittleEndian.PutUint32(out[8:12], versionNoGuide+uint32(len(out))%2)
		}
	}
	sum := sha256.Sum256(out)
	return append(out, sum[:]...)
}
