package generate

import (
	"fmt"
	"math/rand/v2"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sample"
)

// annealedOnDevice is annealed Langevin dynamics with the images in device
// memory for the whole run: the network and the update
// x ← x + (αᵢ/2)·s + √αᵢ·z run on the device, z from the Philox stream of
// the seed (step k's numbers start at k·N·D), so a seed gives the same
// samples on every run of the same GPU — not the CPU's samples, whose
// noise comes from another generator. x₀ is the CPU's (uniform, from r).
func annealedOnDevice(dev *cuda.Device, sc *model.DeviceScorer, st *checkpoint.State, c Config, x []float64, r *rand.Rand) (int, error) {
	if c.StepsPerLevel == 0 {
		c.StepsPerLevel = max(st.SampleSteps, 0)
		if c.StepsPerLevel == 0 {
			c.StepsPerLevel = 100
		}
	}
	if c.Eps == 0 {
		c.Eps = st.SampleEps
		if c.Eps == 0 {
			c.Eps = sample.DefaultEps
		}
	}
	a := sample.Annealed{Sigmas: st.Sigmas, StepsPerLevel: c.StepsPerLevel, Eps: c.Eps, Denoise: c.Denoise}
	if err := a.Validate(); err != nil {
		return 0, err
	}
	for i := range x {
		x[i] = r.Float64() // x₀ ~ U[0,1], as NCSN
	}
	xf := make([]float32, len(x))
	for i, v := range x {
		xf[i] = float32(v)
	}
	// The device is this loop's until it ends: another user's calls while
	// its Batch runs went to a thread without the context, and shared the
	// kernels' parameter memory (a crash under the emulation).
	defer dev.Hold()()
	bx, err := dev.Alloc(len(x))
	if err != nil {
		return 0, err
	}
	defer dev.Free(bx)
	bs, err := dev.Alloc(len(x))
	if err != nil {
		return 0, err
	}
	defer dev.Free(bs)
	if err := dev.Upload(bx, xf); err != nil {
		return 0, err
	}
	evals := 0
	stride := uint64(len(x))
	for i, sigma := range a.Sigmas {
		alpha := a.StepSize(i)
		err := dev.Batch(func() error { // a level's steps: one unit of work on the GPU's thread
			for t := 0; t < a.StepsPerLevel; t++ {
				if err := sc.ScoreOnHeldDevice(dev, bx, c.N, sigma, bs); err != nil {
					return err
				}
				if err := dev.Langevin(bx, bs, alpha, c.Seed, uint64(evals)*stride); err != nil {
					return err
				}
				evals++
			}
			return nil
		})
		if err != nil {
			return evals, err
		}
		fmt.Fprintf(c.logw(), "level %d/%d done (σ = %.4g)\n", i+1, len(a.Sigmas), sigma)
	}
	if a.Denoise {
		sL := a.Sigmas[len(a.Sigmas)-1]
		if err := sc.ScoreOnHeldDevice(dev, bx, c.N, sL, bs); err != nil {
			return evals, err
		}
		if err := dev.Axpy(bx, bs, sL*sL); err != nil {
			return evals, err
		}
		evals++
	}
	if err := dev.Download(xf, bx); err != nil {
		return evals, err
	}
	for i, v := range xf {
		x[i] = float64(v)
	}
	return evals, nil
}
