//go:build linux

package cuda

import (
	"reflect"
	"testing"
	"unsafe"
)

// TestCudnnBindings: every function field of the cuDNN binding is bound to
// a symbol (an unbound one would be a nil call on the first GPU run), and
// the algorithm record has C's layout (48 bytes, memory at 16, math type
// at 28).
func TestCudnnBindings(t *testing.T) {
	l, g := &cudnnLib{}, &dnnGraphLib{}
	allBound(t, l, l.symbols())
	allBound(t, g, g.symbols()) // the graph API's
	var p dnnAlgoPerf
	if s, m, mt := unsafe.Sizeof(p), unsafe.Offsetof(p.Memory), unsafe.Offsetof(p.MathType); s != 48 || m != 16 || mt != 28 {
		t.Errorf("dnnAlgoPerf: size %d, memory at %d, math type at %d; want 48, 16, 28", s, m, mt)
	}
}

// allBound checks that every function field of *lib is in symbols.
func allBound(t *testing.T, lib any, symbols map[string]any) {
	t.Helper()
	bound := map[uintptr]bool{}
	for sym, fn := range symbols {
		v := reflect.ValueOf(fn)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Func {
			t.Fatalf("%s is bound to a %T, not a pointer to a function", sym, fn)
		}
		bound[v.Pointer()] = true
	}
	v := reflect.ValueOf(lib).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Func && !bound[f.Addr().Pointer()] {
			t.Errorf("%s.%s is bound to no symbol", v.Type().Name(), v.Type().Field(i).Name)
		}
	}
}

// The graph API's engines are filtered by their numerical notes: never a
// nondeterministic one, none converting inputs down or summing in reduced
// precision; in exact float32 none on tensor cores.
func TestGraphNotesAllowed(t *testing.T) {
	for _, c := range []struct {
		notes      []int32
		exact, tf2 bool
	}{
		{nil, true, true},
		{[]int32{dnNoteNondet}, false, false},
		{[]int32{dnNoteTensorCore}, false, true},
		{[]int32{dnNoteDownConvert}, false, false},
		{[]int32{dnNoteReducedPrecSum}, false, false},
		{[]int32{5, dnNoteTensorCore}, false, true},
		{[]int32{5, 6}, true, true}, // Winograd, its 4×4 tile: exact float32
		{[]int32{dnNoteTensorCore, dnNoteNondet}, false, false},
		{[]int32{3}, true, true}, // FFT
	} {
		if got := graphNotesAllowed(c.notes, false); got != c.exact {
			t.Errorf("notes %v in exact float32: allowed %v, want %v", c.notes, got, c.exact)
		}
		if got := graphNotesAllowed(c.notes, true); got != c.tf2 {
			t.Errorf("notes %v with TF32: allowed %v, want %v", c.notes, got, c.tf2)
		}
	}
}

// TestCublasVersionString: both encodings of cublasGetVersion (cuBLAS
// 11.6.5 gives 11605, which the newer form read as 1.16.5).
func TestCublasVersionString(t *testing.T) {
	for v, want := range map[int32]string{11200: "11.2.0", 11605: "11.6.5", 10201: "10.2.1", 110902: "11.9.2", 120901: "12.9.1", 130100: "13.1.0"} {
		if got := cublasVersionString(v); got != want {
			t.Errorf("%d: %s, want %s", v, got, want)
		}
	}
}
