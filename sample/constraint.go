package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Constraint ties part of every sample to known values, without retraining
// the score (Song et al. 2021, Appendix I; Song & Ermon 2019 for NCSN):
// after every step of a stochastic sampler the known part is set to the known
// values carried to the step's noise level, m·y + s·z with fresh z, and at
// the end to the known values themselves.
type Constraint interface {
	// Impose sets the known part of every sample in x to mean·y + std·z.
	Impose(x []float64, mean, std float64, r *rand.Rand)
	// Exact sets the known part of every sample in x to y.
	Exact(x []float64)
}

// Known is inpainting's constraint: the values where Mask is true are known
// (Value), for every sample of Dim = len(Mask) values.
type Known struct {
	Mask  []bool
	Value []float64
}

// Validate checks that mask and values line up with samples of dim values.
func (k Known) Validate(dim int) error {
	if len(k.Mask) != dim || len(k.Value) != dim {
		return fmt.Errorf("%w: inpainting: a mask of %d and an image of %d values for samples of %d", ErrConfig, len(k.Mask), len(k.Value), dim)
	}
	return nil
}

func (k Known) size() int { return len(k.Mask) }

func (k Known) Impose(x []float64, mean, std float64, r *rand.Rand) {
	d := len(k.Mask)
	for b := 0; d > 0 && b+d <= len(x); b += d {
		for j, keep := range k.Mask {
			if keep {
				x[b+j] = mean*k.Value[j] + std*r.NormFloat64()
			}
		}
	}
}

func (k Known) Exact(x []float64) {
	d := len(k.Mask)
	for b := 0; d > 0 && b+d <= len(x); b += d {
		for j, keep := range k.Mask {
			if keep {
				x[b+j] = k.Value[j]
			}
		}
	}
}

// Grey is colourisation's constraint for 3-channel (C,H,W) samples: the
// grey level (R+G+B)/3 of every pixel is known (Grey, H·W values). In the
// orthonormal basis whose first vector is (1,1,1)/√3 the grey level is the
// first coordinate times 1/√3 and the other two carry the colour (score_sde's
// decomposition), so the constraint fixes that coordinate and leaves the
// colour to the sampler; isotropic noise stays isotropic in that basis.
type Grey struct {
	Grey []float64
	// Unit says the images' values lie in [0, 1] (the grey levels too):
	// Exact then keeps every channel there, moving the colour as little as it
	// must to keep the grey level.
	Unit bool
}

// Validate checks that the grey image has one value per pixel of samples of
// dim = 3·pixels values.
func (g Grey) Validate(dim int) error {
	if dim != 3*len(g.Grey) {
		return fmt.Errorf("%w: colourisation: a grey image of %d pixels for samples of %d values (3 channels)", ErrConfig, len(g.Grey), dim)
	}
	return nil
}

func (g Grey) size() int { return 3 * len(g.Grey) }

func (g Grey) set(x []float64, target func(j int) float64) {
	hw := len(g.Grey)
	if hw == 0 {
		return
	}
	for b := 0; b+3*hw <= len(x); b += 3 * hw {
		for j := 0; j < hw; j++ {
			r, gr, bl := x[b+j], x[b+hw+j], x[b+2*hw+j]
			u := (r + gr + bl) / math.Sqrt(3) // the coordinate along (1,1,1)/√3
			d := (target(j) - u) / math.Sqrt(3)
			x[b+j], x[b+hw+j], x[b+2*hw+j] = r+d, gr+d, bl+d
		}
	}
}

func (g Grey) Impose(x []float64, mean, std float64, r *rand.Rand) {
	g.set(x, func(j int) float64 { return mean*math.Sqrt(3)*g.Grey[j] + std*r.NormFloat64() })
}

func (g Grey) Exact(x []float64) {
	g.set(x, func(j int) float64 { return math.Sqrt(3) * g.Grey[j] })
	if !g.Unit {
		return
	}
	hw := len(g.Grey)
	for b := 0; hw > 0 && b+3*hw <= len(x); b += 3 * hw {
		for j := 0; j < hw; j++ {
			c := [3]*float64{&x[b+j], &x[b+hw+j], &x[b+2*hw+j]}
			// Clamp, then spread what the clamping took from the grey level
			// over the channels that still have room; three rounds suffice.
			for range 4 {
				var sum float64
				for _, v := range c {
					*v = min(1, max(0, *v))
					sum += *v
				}
				d := 3*g.Grey[j] - sum
				if math.Abs(d) < 1e-15 {
					break
				}
				var free []*float64
				for _, v := range c {
					if (d > 0 && *v < 1) || (d < 0 && *v > 0) {
						free = append(free, v)
					}
				}
				for _, v := range free {
					*v += d / float64(len(free))
				}
			}
		}
	}
}

// checkConstraint checks, for the sampler name, that a Known or Grey
// constraint c fits a batch of n values of samples of dim values (0: of
// the constraint's own size): one that is empty, or of another size, or
// whose known values do not match its mask, is refused (an empty one hung
// the sampler, and one of another size was imposed at the wrong places).
// Other constraints are their own business.
func checkConstraint(name string, c Constraint, dim, n int) error {
	sz, ok := c.(interface{ size() int })
	if c == nil || !ok {
		return nil
	}
	d := sz.size()
	switch {
	case d == 0:
		return fmt.Errorf("%w: %s: an empty constraint (no mask, or no grey image)", ErrConfig, name)
	case dim > 0 && dim != d:
		return fmt.Errorf("%w: %s: a constraint for samples of %d values, and samples of %d (Dim)", ErrConfig, name, d, dim)
	case n%d != 0:
		return fmt.Errorf("%w: %s: a constraint for samples of %d values, and %d values, not a whole batch of them", ErrConfig, name, d, n)
	}
	if v, ok := c.(interface{ Validate(int) error }); ok {
		return v.Validate(d) // "sample: bad config: inpainting: …"
	}
	return nil
}
