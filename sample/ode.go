package sample

import (
	"fmt"
	"math"
)

// ODEStats reports the cost of an ODE solve.
type ODEStats struct {
	Evals    int // score evaluations
	Steps    int // accepted steps
	Rejected int // rejected steps (adaptive solver)
}

// flow is the probability-flow ODE of a VE SDE: dx/dt = −½ g(t)² s(x, σ(t)),
// whose solution from t = 1 to 0 carries the prior to the data distribution
// with the same marginals as the reverse SDE, and no noise.
func flow(s Score, v VESDE, stats *ODEStats) func(t float64, x, dx []float64) error {
	return func(t float64, x, dx []float64) error {
		stats.Evals++
		if err := s.Score(x, v.Sigma(t), dx); err != nil {
			return err
		}
		k := -0.5 * v.G2(t)
		for i := range dx {
			dx[i] *= k
		}
		return nil
	}
}

// ProbabilityFlowRK4 integrates the probability-flow ODE from t = 1 to
// t = tEnd with `steps` fixed classical Runge–Kutta steps, in place.
func ProbabilityFlowRK4(s Score, x []float64, v VESDE, tEnd float64, steps int) (ODEStats, error) {
	var st ODEStats
	if err := v.validate(); err != nil {
		return st, err
	}
	if steps < 1 || !(tEnd >= 0 && tEnd < 1) {
		return st, fmt.Errorf("%w: RK4 with %d steps to t=%g", ErrConfig, steps, tEnd)
	}
	f := flow(s, v, &st)
	n := len(x)
	k1, k2, k3, k4, tmp := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	h := (tEnd - 1) / float64(steps)
	t := 1.0
	for i := 0; i < steps; i++ {
		if err := f(t, x, k1); err != nil {
			return st, err
		}
		for j := range tmp {
			tmp[j] = x[j] + h/2*k1[j]
		}
		if err := f(t+h/2, tmp, k2); err != nil {
			return st, err
		}
		for j := range tmp {
			tmp[j] = x[j] + h/2*k2[j]
		}
		if err := f(t+h/2, tmp, k3); err != nil {
			return st, err
		}
		for j := range tmp {
			tmp[j] = x[j] + h*k3[j]
		}
		if err := f(t+h, tmp, k4); err != nil {
			return st, err
		}
		for j := range x {
			x[j] += h / 6 * (k1[j] + 2*k2[j] + 2*k3[j] + k4[j])
		}
		t += h
		st.Steps++
	}
	return st, nil
}

// Dormand–Prince 5(4) tableau.
var (
	dpC = [7]float64{0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1}
	dpA = [7][6]float64{
		{},
		{1.0 / 5},
		{3.0 / 40, 9.0 / 40},
		{44.0 / 45, -56.0 / 15, 32.0 / 9},
		{19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
		{9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
		{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
	}
	// dpE is the 5th-order weights minus the embedded 4th-order ones.
	dpE = [7]float64{71.0 / 57600, 0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40}
)

// ProbabilityFlowRK45 integrates the probability-flow ODE from t = 1 to tEnd
// with the adaptive Dormand–Prince method: each step's local error estimate,
// scaled by atol + rtol·|x| and averaged (RMS) over all values, must be ≤ 1.
func ProbabilityFlowRK45(s Score, x []float64, v VESDE, tEnd, rtol, atol float64) (ODEStats, error) {
	var st ODEStats
	if err := v.validate(); err != nil {
		return st, err
	}
	if !(tEnd >= 0 && tEnd < 1) || !(rtol > 0) || !(atol > 0) {
		return st, fmt.Errorf("%w: RK45 to t=%g with rtol %g, atol %g", ErrConfig, tEnd, rtol, atol)
	}
	f := flow(s, v, &st)
	n := len(x)
	var k [7][]float64
	for i := range k {
		k[i] = make([]float64, n)
	}
	tmp, xn := make([]float64, n), make([]float64, n)
	t, h := 1.0, (tEnd-1)/100
	if err := f(t, x, k[0]); err != nil {
		return st, err
	}
	for t-tEnd > 1e-12 {
		if t+h < tEnd {
			h = tEnd - t
		}
		for i := 1; i < 7; i++ {
			for j := range tmp {
				acc := x[j]
				for m := 0; m < i; m++ {
					acc += h * dpA[i][m] * k[m][j]
				}
				tmp[j] = acc
			}
			if i == 6 {
				copy(xn, tmp) // row 7 of the tableau is the 5th-order solution
			}
			if err := f(t+dpC[i]*h, tmp, k[i]); err != nil {
				return st, err
			}
		}
		var e2 float64
		for j := range x {
			var e float64
			for m := 0; m < 7; m++ {
				e += dpE[m] * k[m][j]
			}
			sc := atol + rtol*math.Max(math.Abs(x[j]), math.Abs(xn[j]))
			r := h * e / sc
			e2 += r * r
		}
		errNorm := math.Sqrt(e2 / float64(n))
		if errNorm <= 1 {
			t += h
			copy(x, xn)
			k[0], k[6] = k[6], k[0] // first same as last
			st.Steps++
		} else {
			st.Rejected++
		}
		fac := 5.0
		if errNorm > 0 {
			fac = math.Min(5, math.Max(0.2, 0.9*math.Pow(errNorm, -0.2)))
		}
		h *= fac
		if st.Steps+st.Rejected > 100000 {
			return st, fmt.Errorf("sample: RK45 took over 100000 steps (t = %g)", t)
		}
	}
	return st, nil
}
