// Package optim holds the optimiser state that training owns outright, so
// that a checkpoint can save it and a resumed run continues bit for bit: Adam
// (its step count and moments) and the exponential moving average (EMA) of
// the weights that sampling uses.
package optim

import (
	"fmt"
	"math"
)

// Adam is the Adam optimizer (Kingma & Ba) with its moments held here, not
// inside Gorgonia, so that a checkpoint can save them and a resumed run
// continues bit for bit. Hyper-parameters are PyTorch's defaults.
type Adam struct {
	LR, Beta1, Beta2, Eps float64
	T                     int // steps taken
	M, V                  [][]float32
}

// New returns an optimizer for tensors of the given sizes.
func New(lr float64, sizes []int) *Adam {
	a := &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	for _, n := range sizes {
		a.M = append(a.M, make([]float32, n))
		a.V = append(a.V, make([]float32, n))
	}
	return a
}

// Begin advances the step count; call it once per step before Update.
func (a *Adam) Begin() { a.T++ }

// Update applies one step to tensor i given its gradient.
func (a *Adam) Update(i int, w, g []float32) error { return a.UpdateScaled(i, w, g, 1) }

// UpdateScaled applies one step to tensor i given its gradient times scale
// (gradient clipping; scale 1 is exactly Update). w, g and the moments of
// tensor i must be of one length; nothing changes where they are not.
func (a *Adam) UpdateScaled(i int, w, g []float32, scale float64) error {
	if i < 0 || i >= len(a.M) || i >= len(a.V) {
		return fmt.Errorf("optim: tensor %d of %d", i, min(len(a.M), len(a.V)))
	}
	if len(w) != len(g) || len(a.M[i]) != len(g) || len(a.V[i]) != len(g) {
		return fmt.Errorf("optim: tensor %d: %d weights, %d gradients, %d/%d moments", i, len(w), len(g), len(a.M[i]), len(a.V[i]))
	}
	b1, b2 := a.Beta1, a.Beta2
	c1 := 1 - math.Pow(b1, float64(a.T))
	c2 := 1 - math.Pow(b2, float64(a.T))
	step := a.LR / c1
	m, v := a.M[i], a.V[i]
	for j, gj := range g {
		gd := float64(gj) * scale
		mj := b1*float64(m[j]) + (1-b1)*gd
		vj := b2*float64(v[j]) + (1-b2)*gd*gd
		m[j], v[j] = float32(mj), float32(vj)
		w[j] -= float32(step * mj / (math.Sqrt(vj/c2) + a.Eps))
	}
	return nil
}
