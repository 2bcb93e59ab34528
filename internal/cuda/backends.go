//go:build linux

package cuda

import "os"

// Backend is a device that tests of device code run on.
type Backend struct {
	Name string // "emu" (the CPU emulation), "fakegpu" (the driver code on the fake GPU) or "gpu"
	Open func() (*Device, error)
}

// Backends lists the devices a test of device code runs on, and why any
// is missing: the CPU emulation where g++ builds it (not with
// NCSN_TEST_EMU=0, which a GPU machine's checks set to save time; nor,
// where slow is true, without NCSN_SLOW=1: whole training steps and
// sampling levels take tens of seconds in it); with the emulation, the
// fake GPU (OpenFakeGPU: the driver code of a GPU on the emulation) where
// NVRTC loads too, unless NCSN_TEST_FAKEGPU=0; and the GPU where a driver, NVRTC, cuBLAS and a device
// are found. Each Open makes a fresh device.
func Backends(slow bool) (out []Backend, missing []string) {
	switch {
	case os.Getenv("NCSN_TEST_EMU") == "0":
		missing = append(missing, "CPU emulation: off (NCSN_TEST_EMU=0)")
	case slow && os.Getenv("NCSN_SLOW") != "1":
		missing = append(missing, "CPU emulation: slow there, NCSN_SLOW=1 runs it")
	default:
		if d, err := OpenEmulator(); err != nil {
			missing = append(missing, "CPU emulation: "+err.Error())
		} else {
			d.Close()
			out = append(out, Backend{"emu", OpenEmulator})
		}
		fake := func() (*Device, error) { return OpenFakeGPU(0) }
		if os.Getenv("NCSN_TEST_FAKEGPU") == "0" {
			missing = append(missing, "fake GPU: off (NCSN_TEST_FAKEGPU=0)")
		} else if d, err := fake(); err != nil {
			missing = append(missing, "fake GPU: "+err.Error())
		} else {
			d.Close()
			out = append(out, Backend{"fakegpu", fake})
		}
	}
	if d, err := Open(); err != nil {
		missing = append(missing, "GPU: "+err.Error())
	} else {
		d.Close()
		out = append(out, Backend{"gpu", Open})
	}
	return out, missing
}
