//go:build darwin || freebsd || linux || netbsd

package blas

import "github.com/ebitengine/purego"

// openLibrary loads a shared library (dlopen: a bare name through the
// system's search path).
func openLibrary(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

// symbol is the address of a library's exported function.
func symbol(lib uintptr, name string) (uintptr, error) { return purego.Dlsym(lib, name) }
