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

// PermutationEnergyTest runs the test with the given generator (Threshold is
// NaN for perms < 1). It holds the
// n×n distances of the n pooled points (1200 points: 11 MB) and computes each
// split's statistic from them.
func PermutationEnergyTest(x, y []float64, d, perms int, alpha float64, r *rand.Rand) EnergyTest {
	nx, ny := len(x)/d, len(y)/d
	pool := append(append([]float64(nil), x[:nx*d]...), y[:ny*d]...)
	n := nx + ny
	dist := make([]float64, n*n)
	rows := make([]float64, n) // Σ_j dist_ij
	var total float64
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			var q float64
			for k := 0; k < d; k++ {
				v := pool[i*d+k] - pool[j*d+k]
				q += v * v
			}
			dist[i*n+j], dist[j*n+i] = math.Sqrt(q), math.Sqrt(q)
		}
	}
	for i := 0; i < n; i++ {
		for _, v := range dist[i*n : (i+1)*n] {
			rows[i] += v
		}
		total += rows[i]
	}
	// The statistic of the split whose first nx indices are x: with the sums
	// S_xx, S_xy = Σ_{i∈x} rows_i − S_xx and S_yy = total − S_xx − 2S_xy, it
	// is EnergyDistance of the two parts.
	inX := make([]float64, n)
	stat := func(idx []int) float64 {
		clear(inX)
		for _, i := range idx[:nx] {
			inX[i] = 1
		}
		var sxx, sx float64
		for _, i := range idx[:nx] {
			row := dist[i*n : (i+1)*n]
			var s float64
			for j, v := range row {
				s += v * inX[j]
			}
			sxx += s
			sx += rows[i]
		}
		sxy := sx - sxx
		syy := total - sxx - 2*sxy
		return 2*sxy/float64(nx*ny) - sxx/float64(nx*(nx-1)) - syy/float64(ny*(ny-1))
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	obs := stat(idx)
	stats := make([]float64, perms)
	for p := range stats {
		r.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		stats[p] = stat(idx)
	}
	if perms < 1 {
		return EnergyTest{Statistic: obs, Threshold: math.NaN()}
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
