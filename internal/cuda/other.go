//go:build !linux

package cuda

import "fmt"

// The GPU path loads the CUDA libraries the Linux way (dlopen); elsewhere
// it reports that it is not there.

// NVRTCVersion reports that NVRTC is not loaded on this system.
func NVRTCVersion() (string, error) {
	return "", fmt.Errorf("%w: the CUDA path is built for Linux only", ErrNoLibrary)
}

// Compile reports that NVRTC is not loaded on this system.
func Compile(src, arch string) ([]byte, error) {
	_, err := NVRTCVersion()
	return nil, err
}

// Open reports that the CUDA driver is not loaded on this system.
func Open() (*Device, error) {
	_, err := NVRTCVersion()
	return nil, err
}

// Synchronize has nothing to wait for.
func (d *Device) Synchronize() error { return nil }
