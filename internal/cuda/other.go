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
func Open() (*Device, error) { return OpenIndex(0) }

// OpenIndex reports that the CUDA driver is not loaded on this system.
func OpenIndex(index int) (*Device, error) {
	_, err := NVRTCVersion()
	return nil, err
}

// OpenEmulator reports that the emulation is built for Linux only.
func OpenEmulator() (*Device, error) {
	return nil, fmt.Errorf("%w: the CPU emulation of the kernels is built for Linux only", ErrNoLibrary)
}

// DeviceCount reports that the CUDA driver is not loaded on this system.
func DeviceCount() (int, error) {
	_, err := NVRTCVersion()
	return 0, err
}

// Synchronize has nothing to wait for.
func (d *Device) Synchronize() error { return nil }

// dnnState is cuDNN's state, which a device on this system never has.
type dnnState struct{}

func (d *Device) dnnPrepare(g Conv3) (struct{}, error)               { return struct{}{}, nil }
func (d *Device) dnnForward(g Conv3, y, x, w, bias Buffer) error     { return nil }
func (d *Device) dnnBackwardW(g Conv3, dw, x, dy Buffer) error       { return nil }
func (d *Device) dnnBackwardX(g Conv3, dx, w, dy Buffer) error       { return nil }
func (d *Device) dnnBackward(g Conv3, dx, dw, x, w, dy Buffer) error { return nil }

// ConvPlans is empty: no cuDNN on this system.
func (d *Device) ConvPlans() []string { return nil }

func (d *Device) closeDnn() {}

// OpenFakeGPU reports that the fake GPU is built for Linux only.
func OpenFakeGPU(index int) (*Device, error) { return OpenEmulator() }

// FakeGPUReport says that there is no fake GPU on this system.
func FakeGPUReport() string {
	_, err := OpenEmulator()
	return err.Error()
}

// SetFakeGPUs reports that the fake GPU is built for Linux only.
func SetFakeGPUs(n int) error {
	_, err := OpenEmulator()
	return err
}

// FailFakeGPUAllocsAfter reports that the fake GPU is built for Linux only.
func FailFakeGPUAllocsAfter(n int) error {
	_, err := OpenEmulator()
	return err
}
