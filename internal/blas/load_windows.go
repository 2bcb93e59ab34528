//go:build windows

package blas

import "syscall"

// openLibrary loads a DLL (LoadLibrary: a bare name through the DLL search
// path, the PATH included).
func openLibrary(path string) (uintptr, error) {
	h, err := syscall.LoadLibrary(path)
	if err != nil {
		return 0, &libError{path, err}
	}
	return uintptr(h), nil
}

// symbol is the address of a DLL's exported function.
func symbol(lib uintptr, name string) (uintptr, error) {
	return syscall.GetProcAddress(syscall.Handle(lib), name)
}

type libError struct {
	path string
	err  error
}

func (e *libError) Error() string { return e.path + ": " + e.err.Error() }
