//go:build linux

package cuda

import "os"

// Backend is a device that tests of device code run on.
type Backend struct {
	Name string // "emu" (the CPU emulation) or "gpu"
	Open func() (*Device, error)
}

// Backends lists the devices a test of device code runs on, and why any
// is missing: the CPU emulation where g++ builds it (not with
// NCSN_TEST_EMU=0, which a GPU machine's checks set to save time; nor,
// where slow is true, without NCSN_SLOW=1: whole training steps and
// sampling levels take tens of seconds in it), and the GPU where a driver,
// NVRTC, cuBLAS and a device are found. Each Open makes a fresh device.
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
	}
	if d, err := Open(); err != nil {
		missing = append(missing, "GPU: "+err.Error())
	} else {
		d.Close()
		out = append(out, Backend{"gpu", Open})
	}
	return out, missing
}
