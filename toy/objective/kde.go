package objective

import "math"

// KDE is a Gaussian kernel density estimate q_h(x) = (1/n) Σ N(x; x_i, h²I);
// its score is the target of explicit score matching.
type KDE struct {
	pts []float64
	d   int
	h   float64
}

// NewKDE keeps the points (n×d, back to back) and the bandwidth h.
func NewKDE(pts []float64, d int, h float64) *KDE { return &KDE{pts: pts, d: d, h: h} }

// Score writes ∇log q_h(x) = Σ w_i (x_i − x)/h² with softmax weights w_i.
func (k *KDE) Score(x, dst []float64) {
	d, n := k.d, len(k.pts)/k.d
	mx := math.Inf(-1)
	logw := make([]float64, n)
	for i := 0; i < n; i++ {
		var q float64
		for j := 0; j < d; j++ {
			v := x[j] - k.pts[i*d+j]
			q += v * v
		}
		logw[i] = -q / (2 * k.h * k.h)
		mx = math.Max(mx, logw[i])
	}
	var z float64
	for i := range logw {
		logw[i] = math.Exp(logw[i] - mx)
		z += logw[i]
	}
	clear(dst)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			dst[j] += logw[i] / z * (k.pts[i*d+j] - x[j]) / (k.h * k.h)
		}
	}
}
