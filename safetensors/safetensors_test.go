package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sample() *File {
	return &File{
		Tensors: []Tensor{
			{Name: "b.weight", Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, 0, float32(math.Inf(1)), -0}},
			{Name: "a", Shape: []int{1}, Data: []float32{42}},
			{Name: "scalar", Shape: []int{}, Data: []float32{7}},
			{Name: "empty", Shape: []int{0, 4}, Data: []float32{}},
		},
		Metadata: map[string]string{"format": "pt", "config": `{"base":16}`},
	}
}

func encode(t *testing.T, f *File) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The layout the specification asks for, read back by hand: the header
// length, 8-byte alignment of the data, F32 entries with contiguous offsets
// in the order written, and the little-endian values.
func TestEncodeLayout(t *testing.T) {
	b := encode(t, sample())
	n := binary.LittleEndian.Uint64(b)
	if (8+n)%8 != 0 {
		t.Fatalf("data starts at %d, not 8-byte aligned", 8+n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	var e entry
	json.Unmarshal(hdr["b.weight"], &e)
	if e.DType != "F32" || !reflect.DeepEqual(e.Shape, []int{2, 3}) || !reflect.DeepEqual(e.Offsets, []int{0, 24}) {
		t.Fatalf("b.weight entry %+v", e)
	}
	json.Unmarshal(hdr["a"], &e)
	if !reflect.DeepEqual(e.Offsets, []int{24, 28}) {
		t.Fatalf("a offsets %v", e.Offsets)
	}
	data := b[8+n:]
	if len(data) != 4*(6+1+1) {
		t.Fatalf("%d data bytes", len(data))
	}
	if got := math.Float32frombits(binary.LittleEndian.Uint32(data[24:])); got != 42 {
		t.Fatalf("a = %g", got)
	}
	var meta map[string]string
	json.Unmarshal(hdr["__metadata__"], &meta)
	if meta["config"] != `{"base":16}` {
		t.Fatalf("metadata %v", meta)
	}
}

func TestRoundTrip(t *testing.T) {
	in := sample()
	out, err := Decode(bytes.NewReader(encode(t, in)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Metadata, in.Metadata) {
		t.Fatalf("metadata %v", out.Metadata)
	}
	for _, want := range in.Tensors {
		got, ok := out.Get(want.Name)
		if !ok || !reflect.DeepEqual(got.Shape, want.Shape) || len(got.Data) != len(want.Data) || got.DType != "F32" {
			t.Fatalf("%s: %+v", want.Name, got)
		}
		for i := range want.Data {
			if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
				t.Fatalf("%s[%d] = %g, want %g", want.Name, i, got.Data[i], want.Data[i])
			}
		}
	}
}

// raw builds a file from a header string and data bytes, as other writers
// (PyTorch's safetensors package) may lay it out.
func raw(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestOtherDTypes(t *testing.T) {
	var data []byte
	data = binary.LittleEndian.AppendUint64(data, math.Float64bits(-1.25))
	data = binary.LittleEndian.AppendUint16(data, 0x3c00) // F16 1
	data = binary.LittleEndian.AppendUint16(data, 0xc000) // F16 -2
	data = binary.LittleEndian.AppendUint16(data, 0x0001) // F16 smallest subnormal 2⁻²⁴
	data = binary.LittleEndian.AppendUint16(data, 0x7c00) // F16 +Inf
	data = binary.LittleEndian.AppendUint16(data, 0x3fc0) // BF16 1.5
	hdr := `{"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"h":{"dtype":"F16","shape":[2,2],"data_offsets":[8,16]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[16,18]}}`
	f, err := Decode(bytes.NewReader(raw(hdr, data)))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := f.Get("d")
	h, _ := f.Get("h")
	bf, _ := f.Get("b")
	want := []float32{1, -2, float32(math.Ldexp(1, -24)), float32(math.Inf(1))}
	if d.Data[0] != -1.25 || !reflect.DeepEqual(h.Data, want) || bf.Data[0] != 1.5 || h.DType != "F16" {
		t.Fatalf("F64 %v, F16 %v (want %v), BF16 %v", d.Data, h.Data, want, bf.Data)
	}
}

// corrupt lists malformed files with the words their error must contain;
// TestWriteTestdata writes them to testdata/ and TestCorrupt reads them there.
func corrupt() map[string]struct {
	file []byte
	want string
} {
	good := `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	d8 := make([]byte, 8)
	m := map[string]struct {
		file []byte
		want string
	}{
		"empty":           {nil, "shorter than the 8-byte"},
		"short-length":    {[]byte{1, 2, 3}, "shorter than the 8-byte"},
		"huge-header":     {binary.LittleEndian.AppendUint64(nil, 1<<40), "header length"},
		"png":             {[]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "header length"},
		"cut-header":      {raw(good, d8)[:20], "ends inside"},
		"not-object":      {raw(`["w"]`, nil), "does not start with '{'"},
		"bad-json":        {raw(`{"w":{"dtype":"F32",}`, nil), "header"},
		"trailing-json":   {raw(good+`{}`, d8), "after the JSON object"},
		"duplicate":       {raw(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), `names "w" twice`},
		"bad-dtype":       {raw(`{"w":{"dtype":"I8","shape":[8],"data_offsets":[0,8]}}`, d8), `"w": dtype "I8"`},
		"no-shape":        {raw(`{"w":{"dtype":"F32","data_offsets":[0,8]}}`, d8), `"w": no shape`},
		"negative-shape":  {raw(`{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, d8), `"w": shape`},
		"overflow-shape":  {raw(`{"w":{"dtype":"F32","shape":[65536,65536,65536],"data_offsets":[0,8]}}`, d8), `"w": shape`},
		"size-mismatch":   {raw(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, d8), `"w": shape [3] of F32 needs 12 bytes`},
		"bad-offsets":     {raw(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}`, d8), `"w": data_offsets`},
		"unknown-field":   {raw(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`, d8), `"w"`},
		"hole":            {raw(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), `bytes 0 to 4 of the data belong to no tensor (before tensor "w": one missing from the header?)`},
		"overlap":         {raw(`{"v":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), `tensor "w" begins at byte 4 of the data, inside the tensor before it (which ends at 8)`},
		"short-data":      {raw(good, d8[:5]), "ends after 5 of the 8 bytes"},
		"trailing-data":   {raw(good, make([]byte, 9)), "bytes after the last tensor"},
		"bad-metadata":    {raw(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
		"metadata-string": {raw(`{"__metadata__":"x"}`, nil), "__metadata__"},
		// encoding/json matched the keys in any case.
		"key-case":      {raw(`{"w":{"DTYPE":"F32","Shape":[2],"Data_Offsets":[0,8]}}`, d8), `"w": key "DTYPE" is not dtype`},
		"duplicate-key": {raw(`{"w":{"dtype":"F32","shape":[2],"shape":[1],"data_offsets":[0,8]}}`, d8), `names "shape" twice`},
	}
	return m
}

func TestCorrupt(t *testing.T) {
	for name, c := range corrupt() {
		b, err := os.ReadFile(filepath.Join("testdata", name+".safetensors"))
		if err != nil {
			t.Fatalf("%v (regenerate with NCSN_WRITE_TESTDATA=1)", err)
		}
		if !bytes.Equal(b, c.file) {
			t.Fatalf("testdata/%s.safetensors differs from its recipe (regenerate with NCSN_WRITE_TESTDATA=1)", name)
		}
		_, err = Decode(bytes.NewReader(b))
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrFormat containing %q", name, err, c.want)
		}
	}
}

// TestWriteTestdata regenerates testdata/ when NCSN_WRITE_TESTDATA=1.
func TestWriteTestdata(t *testing.T) {
	if os.Getenv("NCSN_WRITE_TESTDATA") != "1" {
		t.Skip("set NCSN_WRITE_TESTDATA=1 to regenerate testdata/")
	}
	for name, c := range corrupt() {
		if err := os.WriteFile(filepath.Join("testdata", name+".safetensors"), c.file, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	Encode(&b, sample())
	os.WriteFile(filepath.Join("testdata", "good.safetensors"), b.Bytes(), 0o644)
}

func TestEncodeRefuses(t *testing.T) {
	for _, f := range []*File{
		nil,
		{Tensors: []Tensor{{Name: "w", Shape: []int{3}, Data: []float32{1, 2}}}},
		{Tensors: []Tensor{{Name: "w", Shape: []int{1}, Data: []float32{1}}, {Name: "w", Shape: []int{1}, Data: []float32{1}}}},
		{Tensors: []Tensor{{Name: "__metadata__", Shape: []int{1}, Data: []float32{1}}}},
	} {
		if err := Encode(&bytes.Buffer{}, f); err == nil {
			t.Errorf("%+v encoded", f)
		}
	}
}

// FuzzDecode: no input panics or allocates without bound, and whatever
// decodes encodes back to a file that decodes to the same tensors.
func FuzzDecode(f *testing.F) {
	for _, c := range corrupt() {
		f.Add(c.file)
	}
	var b bytes.Buffer
	Encode(&b, sample())
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Decode(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if err := Encode(&out, got); err != nil {
			t.Fatal(err)
		}
		again, err := Decode(&out)
		if err != nil || len(again.Tensors) != len(got.Tensors) {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}

// TestHeaderWhitespace: JSON's whitespace after the header's object is
// taken, as the reference's serde_json takes it (only spaces were).
func TestHeaderWhitespace(t *testing.T) {
	for _, pad := range []string{"  ", "\n\n", " \t\r\n"} {
		f, err := Decode(bytes.NewReader(raw(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`+pad, make([]byte, 4))))
		if err != nil || len(f.Tensors) != 1 {
			t.Errorf("padded with %q: %v", pad, err)
		}
	}
}
