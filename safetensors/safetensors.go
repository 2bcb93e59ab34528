// Package safetensors reads and writes the safetensors format, the plain
// weight files of the PyTorch ecosystem
// (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON naming every tensor's dtype, shape and byte range
// (plus an optional "__metadata__" object of strings), then the tensors' raw
// little-endian bytes, back to back with no holes.
//
// Encode writes float32 tensors (dtype F32) with the header padded by spaces
// so that the data starts on an 8-byte boundary. Decode reads F32, F64, F16
// and BF16 tensors into float32 and checks everything the specification
// requires: a bounded header that is one JSON object, known dtypes, shapes
// whose size matches the byte range, ranges inside the buffer that neither
// overlap nor leave holes, and no bytes after the last tensor.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("safetensors: malformed file")

// MaxHeader is the largest header Decode accepts (the reference
// implementation's limit).
const MaxHeader = 100 << 20

// MaxData is the largest tensor buffer Decode accepts: 4 GiB, or what an
// int holds on a 32-bit machine.
const MaxData = min(4<<30, math.MaxInt)

// Tensor is one named tensor, its values in row-major order.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
	// DType is the file's dtype when decoded ("F32", "F64", "F16", "BF16");
	// Encode always writes F32.
	DType string
}

// File is a safetensors file: its tensors (Decode returns them in the order
// of their data in the file) and its metadata.
type File struct {
	Tensors  []Tensor
	Metadata map[string]string
}

// Get returns the tensor of that name.
func (f *File) Get(name string) (*Tensor, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

type entry struct {
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets []int  `json:"data_offsets"`
}

// Encode writes f as F32 tensors in the order given.
func Encode(w io.Writer, f *File) error {
	if f == nil {
		return errors.New("safetensors: no file to write")
	}
	hdr := map[string]any{}
	if len(f.Metadata) > 0 {
		hdr["__metadata__"] = f.Metadata
	}
	off := 0
	for _, t := range f.Tensors {
		if t.Name == "" || t.Name == "__metadata__" {
			return fmt.Errorf("safetensors: invalid tensor name %q", t.Name)
		}
		if _, dup := hdr[t.Name]; dup {
			return fmt.Errorf("safetensors: tensor %q given twice", t.Name)
		}
		n, ok := numel(t.Shape)
		if !ok || n != len(t.Data) {
			return fmt.Errorf("safetensors: tensor %q: shape %v does not hold its %d values", t.Name, t.Shape, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		hdr[t.Name] = entry{DType: "F32", Shape: shape, Offsets: []int{off, off + 4*n}}
		off += 4 * n
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return fmt.Errorf("safetensors: header: %w", err)
	}
	if pad := (8 - len(js)%8) % 8; pad > 0 {
		js = append(js, bytes.Repeat([]byte{' '}, pad)...)
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(js); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for _, t := range f.Tensors {
		for _, v := range t.Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
	}
	_, err = w.Write(buf)
	return err
}

// Looks reports whether the file at path begins as a safetensors file does:
// a header length that fits the file, then '{'. It reads 9 bytes.
func Looks(path string) bool {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	var b [9]byte
	if err != nil || fi.Size() < 10 {
		return false
	}
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return false
	}
	hl := binary.LittleEndian.Uint64(b[:8])
	return hl >= 2 && hl <= MaxHeader && hl <= uint64(fi.Size()-8) && b[8] == '{'
}

// readUpTo reads n bytes of r, or fewer where r ends first: memory grows
// with the bytes there, whatever n a header claims.
func readUpTo(r io.Reader, n int64) ([]byte, error) {
	b := make([]byte, 0, min(n, 64<<10))
	for int64(len(b)) < n {
		if len(b) == cap(b) { // doubled, but never past n
			b = append(make([]byte, 0, min(n, 2*int64(cap(b)))), b...)
		}
		k, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+k]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// Decode reads a whole safetensors file from r.
func Decode(r io.Reader) (*File, error) {
	var lenBuf [8]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, fmt.Errorf("%w: shorter than the 8-byte header length", ErrFormat)
	}
	hl := binary.LittleEndian.Uint64(lenBuf[:])
	if hl < 2 || hl > MaxHeader {
		return nil, fmt.Errorf("%w: header length %d (not a safetensors file?)", ErrFormat, hl)
	}
	// Read as far as the bytes go, not allocated as claimed: a few hostile
	// bytes claimed gigabytes.
	js, err := readUpTo(r, int64(hl))
	if err != nil || uint64(len(js)) != hl {
		return nil, fmt.Errorf("%w: the file ends inside its %d-byte header", ErrFormat, hl)
	}
	if js[0] != '{' {
		return nil, fmt.Errorf("%w: the header does not start with '{' (not a safetensors file?)", ErrFormat)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	// JSON's whitespace may follow (the format pads with spaces; serde_json,
	// which the reference reads with, takes any).
	if rest := strings.TrimRight(string(js[dec.InputOffset():]), " \t\r\n"); rest != "" {
		return nil, fmt.Errorf("%w: header: %d bytes after the JSON object", ErrFormat, len(rest))
	}
	if err := noDuplicateKeys(js); err != nil {
		return nil, err
	}
	f := &File{}
	type span struct {
		name       string
		begin, end int
		e          entry
	}
	var spans []span
	for _, name := range slices.Sorted(maps.Keys(raw)) { // in one order: the same error for the same file
		v := raw[name]
		if name == "__metadata__" {
			if err := json.Unmarshal(v, &f.Metadata); err != nil {
				return nil, fmt.Errorf("%w: __metadata__ must map strings to strings: %v", ErrFormat, err)
			}
			continue
		}
		// The keys exactly as the format spells them (encoding/json took
		// "DTYPE" and "Shape" too), each once.
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(v, &keys); err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			if k != "dtype" && k != "shape" && k != "data_offsets" {
				return nil, fmt.Errorf("%w: tensor %q: key %q is not dtype, shape or data_offsets", ErrFormat, name, k)
			}
		}
		if err := noDuplicateKeys(v); err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %s", ErrFormat, name, strings.TrimPrefix(strings.Replace(err.Error(), "header names", "names", 1), ErrFormat.Error()+": "))
		}
		var e entry
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, fmt.Errorf("%w: tensor %q: dtype %q is not one of F32, F64, F16, BF16", ErrFormat, name, e.DType)
		}
		if e.Shape == nil {
			return nil, fmt.Errorf("%w: tensor %q: no shape", ErrFormat, name)
		}
		n, ok := numel(e.Shape)
		if !ok || n > MaxData/size {
			return nil, fmt.Errorf("%w: tensor %q: shape %v", ErrFormat, name, e.Shape)
		}
		if len(e.Offsets) != 2 || e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] || e.Offsets[1] > MaxData {
			return nil, fmt.Errorf("%w: tensor %q: data_offsets %v", ErrFormat, name, e.Offsets)
		}
		if e.Offsets[1]-e.Offsets[0] != n*size {
			return nil, fmt.Errorf("%w: tensor %q: shape %v of %s needs %d bytes, data_offsets %v give %d",
				ErrFormat, name, e.Shape, e.DType, n*size, e.Offsets, e.Offsets[1]-e.Offsets[0])
		}
		spans = append(spans, span{name, e.Offsets[0], e.Offsets[1], e})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		if spans[i].end != spans[j].end {
			return spans[i].end < spans[j].end
		}
		return spans[i].name < spans[j].name
	})
	end := 0
	for _, s := range spans {
		// Named by the bytes: a tensor left out of the header made a hole
		// that was said as the next tensor's fault.
		if s.begin > end {
			return nil, fmt.Errorf("%w: bytes %d to %d of the data belong to no tensor (before tensor %q: one missing from the header?)", ErrFormat, end, s.begin, s.name)
		}
		if s.begin < end {
			return nil, fmt.Errorf("%w: tensor %q begins at byte %d of the data, inside the tensor before it (which ends at %d)", ErrFormat, s.name, s.begin, end)
		}
		end = s.end
	}
	data, err := readUpTo(r, int64(end))
	if err != nil || len(data) != end {
		return nil, fmt.Errorf("%w: the data ends after %d of the %d bytes the header names", ErrFormat, len(data), end)
	}
	if k, _ := io.ReadFull(r, make([]byte, 1)); k != 0 {
		return nil, fmt.Errorf("%w: bytes after the last tensor (%d bytes named by the header)", ErrFormat, end)
	}
	for _, s := range spans {
		f.Tensors = append(f.Tensors, Tensor{Name: s.name, Shape: slices.Clone(s.e.Shape), DType: s.e.DType,
			Data: toFloat32(data[s.begin:s.end], s.e.DType)})
	}
	return f, nil
}

var dtypeSize = map[string]int{"F32": 4, "F64": 8, "F16": 2, "BF16": 2}

// numel is the product of the dimensions, false if one is negative or the
// product overflows.
func numel(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return 0, false
		}
		n *= d
	}
	return n, true
}

func toFloat32(b []byte, dtype string) []float32 {
	size := dtypeSize[dtype]
	out := make([]float32, len(b)/size)
	for i := range out {
		p := b[i*size:]
		switch dtype {
		case "F32":
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(p))
		case "F64":
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(p)))
		case "BF16":
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(p)) << 16)
		case "F16":
			out[i] = half(binary.LittleEndian.Uint16(p))
		}
	}
	return out
}

// half converts an IEEE 754 binary16 value.
func half(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: frac·2⁻²⁴
		v := float32(frac) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// noDuplicateKeys rejects a header naming a key twice at its top level
// (encoding/json would silently keep the last).
func noDuplicateKeys(js []byte) error {
	d := json.NewDecoder(bytes.NewReader(js))
	if _, err := d.Token(); err != nil { // {
		return fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	seen := map[string]bool{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return fmt.Errorf("%w: header: %v", ErrFormat, err)
		}
		k, _ := t.(string)
		if seen[k] {
			return fmt.Errorf("%w: header names %q twice", ErrFormat, k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return fmt.Errorf("%w: header: %v", ErrFormat, err)
		}
	}
	return nil
}
