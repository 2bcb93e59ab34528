package optim

// EMADecay is the decay of the weights' moving average after t optimiser
// steps: min(decay, (1+t)/(10+t)). The warm-up (as common NCSN code has it)
// keeps the early average from being mostly the random initialisation.
func EMADecay(decay float64, t int) float32 {
	return float32(min(decay, float64(1+t)/float64(10+t)))
}

// UpdateEMA moves the average ema towards the weights w: ema ← d·ema + (1−d)·w.
func UpdateEMA(ema, w []float32, d float32) {
	for j, v := range w {
		ema[j] = d*ema[j] + (1-d)*v
	}
}
