package eval

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// Moments returns the mean and covariance (unbiased) of n feature rows of
// dimension d, back to back. It needs n ≥ 2 whole rows of finite values.
func Moments(f []float64, d int) ([]float64, *mat.SymDense, error) {
	if d < 1 || len(f)%d != 0 || len(f)/d < 2 {
		return nil, nil, fmt.Errorf("eval: moments of %d values in rows of %d (at least two whole rows are needed)", len(f), d)
	}
	for i, v := range f {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil, fmt.Errorf("eval: moments of features that are not finite (%g in row %d)", v, i/d)
		}
	}
	n := len(f) / d
	mu := make([]float64, d)
	for i := 0; i < n; i++ {
		for k := 0; k < d; k++ {
			mu[k] += f[i*d+k] / float64(n)
		}
	}
	c := mat.NewDense(n, d, nil)
	for i := 0; i < n; i++ {
		for k := 0; k < d; k++ {
			c.Set(i, k, f[i*d+k]-mu[k])
		}
	}
	cov := mat.NewSymDense(d, nil)
	cov.SymOuterK(1/float64(n-1), c.T())
	return mu, cov, nil
}

// sqrtPSD is the symmetric square root of a positive semi-definite matrix
// (negative eigenvalues from rounding are clipped to zero); a matrix with an
// eigenvalue below −1e-9 of its largest magnitude is no covariance.
func sqrtPSD(a *mat.SymDense) (*mat.SymDense, error) {
	var e mat.EigenSym
	if !e.Factorize(a, true) {
		return nil, fmt.Errorf("eval: eigendecomposition failed")
	}
	vals := e.Values(nil)
	if err := checkPSD(vals); err != nil {
		return nil, err
	}
	var v mat.Dense
	e.VectorsTo(&v)
	d := len(vals)
	s := mat.NewDense(d, d, nil)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			var acc float64
			for k, l := range vals {
				acc += v.At(i, k) * math.Sqrt(math.Max(l, 0)) * v.At(j, k)
			}
			s.Set(i, j, acc)
		}
	}
	out := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			out.SetSym(i, j, (s.At(i, j)+s.At(j, i))/2)
		}
	}
	return out, nil
}

// checkPSD refuses eigenvalues of a covariance that rounding cannot explain.
func checkPSD(vals []float64) error {
	var big float64
	for _, l := range vals {
		big = max(big, math.Abs(l))
	}
	for _, l := range vals {
		if l < -1e-9*big {
			return fmt.Errorf("eval: a covariance with the eigenvalue %g is not positive semi-definite", l)
		}
	}
	return nil
}

// Frechet is the Fréchet distance between N(mu1, cov1) and N(mu2, cov2):
// ‖μ₁−μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁^{½} Σ₂ Σ₁^{½})^{½}), where the last trace is
// that of the symmetric form of (Σ₁Σ₂)^{½}, computed with eigendecompositions;
// never below 0. Means and covariances must be finite and the covariances
// positive semi-definite (to rounding).
func Frechet(mu1 []float64, cov1 *mat.SymDense, mu2 []float64, cov2 *mat.SymDense) (float64, error) {
	if cov1 == nil || cov2 == nil {
		return 0, fmt.Errorf("eval: Fréchet distance without a covariance")
	}
	d := len(mu1)
	if len(mu2) != d || cov1.SymmetricDim() != d || cov2.SymmetricDim() != d {
		return 0, fmt.Errorf("eval: Fréchet distance of dimensions %d, %d, %d, %d", d, len(mu2), cov1.SymmetricDim(), cov2.SymmetricDim())
	}
	for _, v := range append(slices.Clone(mu1), mu2...) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("eval: Fréchet distance of a mean that is not finite (%g)", v)
		}
	}
	for _, c := range []*mat.SymDense{cov1, cov2} {
		for i := 0; i < d; i++ {
			for j := i; j < d; j++ {
				if v := c.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
					return 0, fmt.Errorf("eval: Fréchet distance of a covariance that is not finite (%g)", v)
				}
			}
		}
	}
	var e2 mat.EigenSym
	if !e2.Factorize(cov2, false) {
		return 0, fmt.Errorf("eval: eigendecomposition failed")
	}
	if err := checkPSD(e2.Values(nil)); err != nil {
		return 0, err
	}
	var m float64
	for i := range mu1 {
		m += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i])
	}
	s1, err := sqrtPSD(cov1)
	if err != nil {
		return 0, err
	}
	var t mat.Dense
	t.Mul(s1, cov2)
	t.Mul(&t, s1)
	sym := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			sym.SetSym(i, j, (t.At(i, j)+t.At(j, i))/2)
		}
	}
	var e mat.EigenSym
	if !e.Factorize(sym, false) {
		return 0, fmt.Errorf("eval: eigendecomposition failed")
	}
	var trSqrt float64
	for _, l := range e.Values(nil) {
		trSqrt += math.Sqrt(math.Max(l, 0))
	}
	// A distance: float64 rounding of the trace terms can leave a hair below
	// 0 for identical sets.
	return max(0, m+mat.Trace(cov1)+mat.Trace(cov2)-2*trSqrt), nil
}
