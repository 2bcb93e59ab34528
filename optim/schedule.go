package optim

import "math"

// Schedules names the learning-rate schedules ScheduledLR knows: constant
// ("" or "none") and cosine decay to zero at the last step.
var Schedules = []string{"none", "cosine"}

// ScheduledLR is the learning rate of step (0-based) of total: base, ramped
// linearly over the first warmup steps ((step+1)/warmup of it) and, with
// decay "cosine", then multiplied by ½(1 + cos(π·p)), p the fraction of the
// steps after the warm-up that are done (reaching 0 at step total).
func ScheduledLR(base float64, step, warmup, total int, decay string) float64 {
	lr := base
	if step < warmup {
		lr *= float64(step+1) / float64(warmup)
	}
	if decay == "cosine" && step >= warmup && total > warmup {
		p := min(1, float64(step-warmup)/float64(total-warmup))
		lr *= 0.5 * (1 + math.Cos(math.Pi*p))
	}
	return lr
}
