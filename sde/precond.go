package sde

import "math"

// EDM holds the preconditioning of Karras et al. 2022 ("Elucidating the
// design space of diffusion-based generative models", EDM) at one σ, for
// data whose values have second moment σ_data² (the root mean square of the
// training pixels). The network F sees c_in·x̃ and its output makes the
// denoiser D(x̃) = c_skip·x̃ + c_out·F, hence the score
//
//	s(x̃, σ) = (D(x̃) − x̃)/σ² = SkipScale·x̃ + OutScale·F,
//
// and training weights ‖D − x‖² by 1/c_out², so that F's target,
// (x − c_skip·x̃)/c_out, has unit variance at every σ.
type EDM struct {
	Skip, Out, In float64 // c_skip, c_out, c_in
	// SkipScale = (c_skip − 1)/σ² and OutScale = c_out/σ² are the score's
	// coefficients of x̃ and F.
	SkipScale, OutScale float64
	// LossScale = σ/c_out: with it the loss ½‖σ s + z‖², scaled by
	// LossScale², is ½‖D − x‖²/c_out² = ½‖F − target‖².
	LossScale float64
}

// EDMPreconditioning returns EDM's coefficients at noise level sigma for
// data of root mean square sigmaData:
//
//	c_skip = σ_d²/(σ² + σ_d²), c_out = σ σ_d/√(σ² + σ_d²), c_in = 1/√(σ² + σ_d²).
//
// At small σ, c_skip → 1 and c_out → σ: the score is F/σ as in NCSNv2; at
// large σ the network predicts a mix of the image and the noise instead of
// the noise alone, whose error the score would multiply by σ.
func EDMPreconditioning(sigma, sigmaData float64) EDM {
	v := sigma*sigma + sigmaData*sigmaData
	r := math.Sqrt(v)
	e := EDM{Skip: sigmaData * sigmaData / v, Out: sigma * sigmaData / r, In: 1 / r}
	// c_skip − 1 = −σ²/(σ² + σ_d²), so (c_skip − 1)/σ² = −1/(σ² + σ_d²)
	// without the cancellation.
	e.SkipScale = -1 / v
	e.OutScale = e.Out / (sigma * sigma)
	e.LossScale = sigma / e.Out
	return e
}

// EDM's training distribution of σ (Karras et al. 2022, Table 1): ln σ ~
// N(P_mean, P_std²) with P_mean = −1.2, P_std = 1.2, for data of σ_data =
// 0.5 (images in [−1, 1]). These are EDM's values; a run may choose others
// (EDMTrainingSigma's pMean and pStd).
const (
	EDMPMean = -1.2
	EDMPStd  = 1.2
	// edmSigmaData is the σ_data for which P_mean was chosen.
	edmSigmaData = 0.5
)

// EDMTrainingSigma maps a standard normal draw z to a training noise level of
// EDM's log-normal distribution ln σ ~ N(pMean, pStd²) (EDM's own: EDMPMean,
// EDMPStd), carried to data of root mean square sigmaData by scaling σ with
// sigmaData/0.5: σ = (sigmaData/0.5)·exp(pMean + pStd·z). The scale keeps
// σ in proportion to the data's own root mean square, the σ_data of EDM's
// preconditioning. It is not the exact carrying of [−1, 1] to [0, 1],
// which is a factor 0.5 for every dataset: the root mean square of data in
// [0, 1] keeps its mean (MNIST's 0.3347 gives 0.67; CIFAR-10's, about 0.53,
// gives about 1.07). The MNIST presets chose their P_mean (−0.8) on this
// scale by experiment (BENCHMARKS.md).
func EDMTrainingSigma(z, sigmaData, pMean, pStd float64) float64 {
	return sigmaData / edmSigmaData * math.Exp(pMean+pStd*z)
}
