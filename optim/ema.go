package optim

import "fmt"

// EMADecay is the decay of the weights' moving average after t optimiser
// steps: with warmup, min(decay, (1+t)/(10+t)) (TensorFlow's
// ExponentialMovingAverage with num_updates), which keeps the early average
// from being mostly the random initialisation but stays below 0.999 until
// step 8990; without it, decay from the first step (as NCSNv2's and
// score_sde's code have it).
func EMADecay(decay float64, t int, warmup bool) float32 {
	if !warmup {
		return float32(decay)
	}
	return float32(min(decay, float64(1+t)/float64(10+t)))
}

// UpdateEMA moves the average ema towards the weights w: ema ← d·ema + (1−d)·w.
// The two must be of one length; nothing changes where they are not.
func UpdateEMA(ema, w []float32, d float32) error {
	if len(ema) != len(w) {
		return fmt.Errorf("optim: an average of %d values for %d weights", len(ema), len(w))
	}
	for j, v := range w {
		ema[j] = d*ema[j] + (1-d)*v
	}
	return nil
}
