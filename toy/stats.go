package toy

import (
	"math"
	"math/rand/v2"
	"sort"
)

// EnergyDistance is 2E‖X−Y‖ − E‖X−X′‖ − E‖Y−Y′‖ (Székely), estimated from
// the points of x and y (back to back, dimension d). It is zero exactly when
// the two distributions are equal.
func EnergyDistance(x, y []float64, d int) float64 {
	return 2*meanDist(x, y, d, false) - meanDist(x, x, d, true) - meanDist(y, y, d, true)
}

func meanDist(a, b []float64, d int, same bool) float64 {
	na, nb := len(a)/d, len(b)/d
	var s float64
	for i := 0; i < na; i++ {
		for j := 0; j < nb; j++ {
			if same && i == j {
				continue
			}
			var q float64
			for k := 0; k < d; k++ {
				v := a[i*d+k] - b[j*d+k]
				q += v * v
			}
			s += math.Sqrt(q)
		}
	}
	if same {
		return s / float64(na*(na-1))
	}
	return s / float64(na*nb)
}

// EnergyTest is a permutation two-sample test: the energy distance of x and
// y, and the (1−alpha) quantile of the same statistic over `perms` random
// splits of the pooled points. x and y come from one distribution at level
// alpha when Statistic ≤ Threshold.
type EnergyTest struct {
	Statistic, Threshold float64
}

// PermutationEnergyTest runs the test with the given generator.
func PermutationEnergyTest(x, y []float64, d, perms int, alpha float64, r *rand.Rand) EnergyTest {
	obs := EnergyDistance(x, y, d)
	nx := len(x) / d
	pool := append(append([]float64(nil), x...), y...)
	n := len(pool) / d
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	px, py := make([]float64, len(x)), make([]float64, len(y))
	stats := make([]float64, perms)
	for p := range stats {
		r.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for i, k := range idx {
			if i < nx {
				copy(px[i*d:(i+1)*d], pool[k*d:(k+1)*d])
			} else {
				copy(py[(i-nx)*d:(i-nx+1)*d], pool[k*d:(k+1)*d])
			}
		}
		stats[p] = EnergyDistance(px, py, d)
	}
	sort.Float64s(stats)
	q := int(math.Ceil((1-alpha)*float64(perms))) - 1
	return EnergyTest{Statistic: obs, Threshold: stats[max(0, min(q, perms-1))]}
}

// ModeWeights is the share of points nearest (by likelihood) to each component.
func (m *Mixture) ModeWeights(x []float64) []float64 {
	w := make([]float64, len(m.Comps))
	a := m.Assign(x)
	for _, k := range a {
		w[k] += 1 / float64(len(a))
	}
	return w
}

// ModeMoments returns the mean and covariance (row-major d×d) of the points
// assigned to component k.
func (m *Mixture) ModeMoments(x []float64, k int) (mean, cov []float64) {
	d := m.dim
	a := m.Assign(x)
	mean, cov = make([]float64, d), make([]float64, d*d)
	n := 0
	for p, c := range a {
		if c == k {
			n++
			for i := 0; i < d; i++ {
				mean[i] += x[p*d+i]
			}
		}
	}
	if n < 2 {
		return mean, cov
	}
	for i := range mean {
		mean[i] /= float64(n)
	}
	for p, c := range a {
		if c != k {
			continue
		}
		for i := 0; i < d; i++ {
			for j := 0; j < d; j++ {
				cov[i*d+j] += (x[p*d+i] - mean[i]) * (x[p*d+j] - mean[j]) / float64(n-1)
			}
		}
	}
	return mean, cov
}
