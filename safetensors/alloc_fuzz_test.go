package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// FuzzDecodeAlloc: Decode allocates in proportion to its input, whatever
// sizes the header claims (a header naming 4 GiB in a 100-byte file must be
// refused before the 4 GiB is allocated; it allocated it, and a 96-byte
// file killed `export -import` out of memory).
//
//	go test -run '^$' -fuzz '^FuzzDecodeAlloc$' -fuzztime 3m ./safetensors
func FuzzDecodeAlloc(f *testing.F) {
	for _, c := range corrupt() {
		f.Add(c.file)
	}
	var b bytes.Buffer
	Encode(&b, sample())
	f.Add(b.Bytes())
	js := []byte(`{"w":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,4294967296]}}`)
	var h bytes.Buffer
	binary.Write(&h, binary.LittleEndian, uint64(len(js)))
	h.Write(js)
	h.Write(make([]byte, 16))
	f.Add(h.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		_, err := Decode(bytes.NewReader(in))
		runtime.ReadMemStats(&m1)
		if err != nil && !errors.Is(err, ErrFormat) {
			t.Fatalf("error without ErrFormat: %v", err)
		}
		if got, bound := m1.TotalAlloc-m0.TotalAlloc, uint64(64*len(in)+8<<20); got > bound {
			t.Fatalf("%d-byte input: allocated %d bytes (err %v)", len(in), got, err)
		}
	})
}
