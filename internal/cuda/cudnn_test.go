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
	l := &cudnnLib{}
	bound := map[uintptr]bool{}
	for sym, fn := range l.symbols() {
		v := reflect.ValueOf(fn)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Func {
			t.Fatalf("%s is bound to a %T, not a pointer to a function", sym, fn)
		}
		bound[v.Pointer()] = true
	}
	v := reflect.ValueOf(l).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Func && !bound[f.Addr().Pointer()] {
			t.Errorf("cudnnLib.%s is bound to no symbol", v.Type().Field(i).Name)
		}
	}
	var p dnnAlgoPerf
	if s, m, mt := unsafe.Sizeof(p), unsafe.Offsetof(p.Memory), unsafe.Offsetof(p.MathType); s != 48 || m != 16 || mt != 28 {
		t.Errorf("dnnAlgoPerf: size %d, memory at %d, math type at %d; want 48, 16, 28", s, m, mt)
	}
}
